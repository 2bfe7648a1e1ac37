"""Assembles the ASGI application and its lifespan (open the store, migrate, close).

An API process loads only what answering HTTP needs: the API, the pages the gateway serves, the console,
and the carrier plug-ins' routes (which load their own codecs at their first request). The worker side
(media, carriers' clients, the delivery engine) is :mod:`mmsgate.runtime`'s.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mmsgate import __version__
from mmsgate.api.auth import Authenticator
from mmsgate.api.endpoint import Endpoint
from mmsgate.api.status import StatusView
from mmsgate.carriers import PLUGINS
from mmsgate.common.guard import parse_networks
from mmsgate.common.http import RETRY_AFTER, RETRY_AFTER_SECONDS, failure, json_response
from mmsgate.config import Settings
from mmsgate.core.codes import ErrorCode
from mmsgate.errors import StoreError, StoreUnavailable
from mmsgate.process import tune_gc
from mmsgate.store import Store, create_store
from mmsgate.web.console import Console
from mmsgate.web.content import InboundContent
from mmsgate.web.hosted import HostedContent
from mmsgate.wiring import (
    account_settings,
    blob_store,
    edge_ports,
    inbound_receiver,
    open_store,
    public_url_resolver,
)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI description of every endpoint mmsgate serves."""
    text = (resources.files("mmsgate.api") / "openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    document["info"]["version"] = __version__
    return document


class Gateway:
    """The gateway's ASGI app: ``POST /ep/v2/`` goes straight to the endpoint (the hot path); everything
    else, the lifespan included, to the Starlette application behind it."""

    def __init__(self, endpoint: Endpoint, app: Starlette) -> None:
        self.endpoint = endpoint
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in _API_PATHS:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


_API_PATHS = frozenset({"/ep/v2/", "/ep/v2"})


def create_app(settings: Settings, store: Store | None = None, *, migrate: bool = True) -> Gateway:
    """The gateway's HTTP application. Without ``store``, the one named by the settings is opened."""
    the_store = store if store is not None else create_store(settings)
    owns_store = store is None
    accounts = account_settings(settings, the_store)
    auth = Authenticator(the_store.accounts, accounts, settings.auth_cache_seconds)
    endpoint = Endpoint(the_store.accepting, auth, settings.max_body_bytes)
    status = StatusView(the_store.messages, auth)
    blobs = blob_store(settings)
    inbound = inbound_receiver(settings, the_store, accounts, blobs)
    content = InboundContent(the_store.incoming, blobs)
    hosted = HostedContent(the_store.messages, blobs)
    ports = edge_ports(settings, the_store, inbound, blobs, auth.account_for)
    console = Console(
        console=the_store.console,
        messages=the_store.messages,
        accounts=the_store.accounts,
        numbers=the_store.numbers,
        sandbox=the_store.sandbox,
        backlog=the_store.backlog,
        endpoint=endpoint,
        inbound=inbound,
        blobs=blobs,
        public_url=public_url_resolver(settings, the_store.values),
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )

    @functools.cache
    def openapi_body() -> bytes:
        return json.dumps(openapi_document()).encode()

    async def openapi(_: Request) -> Response:
        return Response(openapi_body(), media_type="application/json")

    async def health(_: Request) -> Response:
        return json_response({"status": "ok", "version": __version__})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if owns_store:
            await open_store(settings, the_store, migrate=migrate)
        tune_gc()  # the objects built at start-up live as long as the process
        try:
            yield
        finally:
            endpoint.shutting_down = True
            if owns_store:
                await the_store.close()

    app = Starlette(
        routes=[
            # POST reaches the endpoint through Gateway; these routes answer 405 to other methods
            Route("/ep/v2/", endpoint, methods=["POST"]),
            Route("/ep/v2", endpoint, methods=["POST"]),
            Route("/v1/messages/{tracking_id}", status.message, methods=["GET"]),
            Route("/v1/templates/{mms_id}", status.template, methods=["GET"]),
            Route("/mo/{token}/{name}", content.file, methods=["GET"]),
            Route("/m/{code}", hosted.page, methods=["GET"]),
            Route("/m/{code}/{position:int}", hosted.file, methods=["GET"]),
            *(route for plugin in PLUGINS.values() if plugin.routes is not None for route in plugin.routes(ports)),
            console.routes(),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={StoreError: store_failed},
    )
    app.state.store = the_store
    app.state.endpoint = endpoint
    app.state.inbound = inbound
    app.state.console = console
    return Gateway(endpoint, app)


_PAGES = ("/console", "/m/", "/mo/")
"""Paths of pages read by people (the console, hosted fallback pages, inbound content), not by API clients."""


async def store_failed(request: Request, exc: Exception) -> Response:
    """A store failure no handler answered: 503 with ``Retry-After`` while the database is away (the same
    request works once it is back), else 500; in the API's failure shape, or a plain page for people."""
    logging.getLogger("mmsgate.api").warning("%s %s: the store failed: %s", request.method, request.url.path, exc)
    if isinstance(exc, StoreUnavailable):
        status, headers = 503, RETRY_AFTER
        info = f"the database is unavailable; retry in {RETRY_AFTER_SECONDS} s"
    else:
        status, headers, info = 500, None, "internal error: the store failed; please retry"
    if request.url.path.startswith(_PAGES):
        return PlainTextResponse(f"{status} {info}\n", status_code=status, headers=headers)
    return failure(ErrorCode.INTERNAL, info, status, headers)


def app_from_environment() -> Gateway:
    """Factory for multi-process serving: each process builds its settings from MMSGATE_* variables."""
    from mmsgate.config import load_settings

    return create_app(load_settings())

"""Assembles the ASGI application and its lifespan (open the store, migrate, close)."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mmsgate import __version__
from mmsgate.api.auth import Authenticator
from mmsgate.api.endpoint import Endpoint, json_response
from mmsgate.api.status import StatusView
from mmsgate.carriers.mm7.vasp import VaspEndpoint
from mmsgate.config import Settings
from mmsgate.runtime import build_inbound, public_url_resolver
from mmsgate.store import create_store
from mmsgate.store.base import Store
from mmsgate.web.console import Console
from mmsgate.web.content import InboundContent
from mmsgate.web.hosted import HostedContent
from mmsgate.web.sandbox import SandboxApi


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
    auth = Authenticator(the_store, settings.auth_cache_seconds)
    endpoint = Endpoint(the_store, auth, settings.max_body_bytes)
    status = StatusView(the_store, auth)
    inbound = build_inbound(settings, the_store)
    content = InboundContent(the_store, inbound.blobs)
    hosted = HostedContent(the_store, inbound.blobs)
    vasp = VaspEndpoint(the_store, inbound.blobs, max_bytes=2 * settings.inbound_max_bytes + 65536)
    sandbox = SandboxApi(the_store, auth, inbound, inbound.blobs)
    console = Console(the_store, endpoint, inbound, inbound.blobs, public_url_resolver(settings, the_store))
    sandbox_routes = [
        Route("/v1/sandbox/handsets/{number}", sandbox.handset, methods=["GET", "PUT"]),
        Route("/v1/sandbox/handsets/{number}/inbox", sandbox.inbox, methods=["GET"]),
        Route("/v1/sandbox/handsets/{number}/inbox/{message}/{location}", sandbox.part, methods=["GET"]),
        Route("/v1/sandbox/handsets/{number}/send", sandbox.send, methods=["POST"]),
    ]

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
            if migrate:
                await the_store.migrate()
            await the_store.open()
        # the objects built at start-up live as long as the process: keep the collector off them, and
        # collect the young generation less often (every request allocates many short-lived objects)
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
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
            Route("/mm7/{name}", vasp.handle, methods=["POST"]),
            *(sandbox_routes if settings.sandbox_api and settings.carrier == "sandbox" else []),
            console.routes(),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.store = the_store
    app.state.endpoint = endpoint
    app.state.vasp = vasp
    return Gateway(endpoint, app)


def app_from_environment() -> Gateway:
    """Factory for multi-process serving: each process builds its settings from MMSGATE_* variables."""
    from mmsgate.config import load_settings

    return create_app(load_settings())

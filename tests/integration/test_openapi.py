"""The OpenAPI document the gateway serves is valid and describes every route it serves."""

from __future__ import annotations

import re

import httpx
from openapi_spec_validator import validate
from starlette.routing import Route

from mmsgate.app import create_app
from mmsgate.config import Settings
from mmsgate.store import Store


async def test_served_document_is_valid_and_complete(store: Store, settings: Settings) -> None:
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    documented = {
        (re.sub(r"\{[^}]+\}", "{}", path), method.upper())
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "delete", "patch"}
    }
    served = {
        (re.sub(r"\{[^}]+\}", "{}", route.path), method)
        for route in app.app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert served - documented == set(), "routes the document does not describe"
    assert "postback" in document.get("webhooks", {})

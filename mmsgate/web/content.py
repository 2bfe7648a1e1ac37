"""``GET /mo/{token}/{name}``: the files of an inbound MMS, as its N401 postback links them.

The token is 256 random bits, so the URL is unguessable; it stops working after the retention time.
Answers carry the part's Content-Type and Content-Length and may be cached privately until expiry.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from mmsgate.core.model import utcnow
from mmsgate.core.roles import Blobs, Incoming
from mmsgate.errors import NotFound


class InboundContent:
    def __init__(self, incoming: Incoming, blobs: Blobs) -> None:
        self.incoming = incoming
        self.blobs = blobs

    async def file(self, request: Request) -> Response:
        token = request.path_params["token"]
        name = request.path_params["name"]
        try:
            inbound = await self.incoming.find_inbound(token)
        except NotFound:
            return Response("no such file\n", status_code=404, media_type="text/plain")
        if utcnow() >= inbound.expires_at:
            return Response("this content has expired\n", status_code=410, media_type="text/plain")
        part = next((p for p in inbound.parts if p.name == name), None)
        if part is None:
            return Response("no such file\n", status_code=404, media_type="text/plain")
        seconds = int((inbound.expires_at - utcnow()).total_seconds())
        return FileResponse(
            self.blobs.path(part.sha256),
            media_type=part.content_type,
            headers={"Cache-Control": f"private, max-age={max(0, seconds)}", "X-Content-Type-Options": "nosniff"},
        )

"""Files uploaded to the gateway itself for a test send (the console's ``/console/uploads/{token}``).

Their URL is the gateway's public URL, which in the default set-up (``serve`` on 127.0.0.1) is a loopback
address the media fetcher refuses, and rightly so: allowing the gateway's own address to every client
would let any API caller make the gateway fetch from itself. So the media stage reads an upload straight
from the store and the blob store instead, and only when the URL is exactly an upload URL under the
gateway's own public URL with a token the store knows and that has not expired. Anything else (another
host, an unknown token, a worker on a machine whose blob store lacks the file) goes over HTTP as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mmsgate.core.model import MediaKind, utcnow
from mmsgate.core.records import UPLOADS_PATH, upload_token_hash
from mmsgate.core.roles import Blobs, ConsoleState
from mmsgate.errors import MediaError
from mmsgate.media.fetch import Fetched
from mmsgate.media.kinds import RULES


class GatewayUploads:
    """The fetcher's ``local`` reader of console uploads."""

    def __init__(self, console: ConsoleState, blobs: Blobs, public_url: Callable[[], Awaitable[str]]) -> None:
        self.console = console
        self.blobs = blobs
        self.public_url = public_url

    async def read(self, url: str, kind: MediaKind) -> Fetched | None:
        if UPLOADS_PATH not in url:  # the common case costs one substring test, no store read
            return None
        prefix = (await self.public_url()).rstrip("/") + UPLOADS_PATH
        token = url[len(prefix) :] if url.startswith(prefix) else ""
        if not token or not token.replace("-", "").replace("_", "").isalnum():
            return None
        upload = await self.console.console_upload(upload_token_hash(token))
        if upload is None:
            return None
        if utcnow() >= upload.expires_at:
            raise MediaError(RULES[kind].fetch_failed, f"{url}: the uploaded file has expired")
        try:
            body = await asyncio.to_thread(self.blobs.get, upload.sha256)
        except FileNotFoundError:
            return None  # another machine's upload: fetched over HTTP
        return Fetched(url, body, upload.content_type.split(";", 1)[0].strip().lower() or None)

"""The ceiling for bench/accept.py: a bare Starlette app answering fixed JSON.

It serves the same paths as mmsgate (``POST /ep/v2/``, ``GET /health``) on the same stack (uvicorn,
1 process, uvloop, httptools, access log off). The handler reads the request body, as any POST
endpoint must, and answers a constant sendmms success; nothing is parsed, checked or stored.

Run: ``python bench/bare_app.py [--host 127.0.0.1] [--port 0]``; once ready it prints
``bare listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ANSWER = {
    "status": "success",
    "to": "15550100001",
    "tracking-id": "6f1c2b9e-3d4a-4f5b-9c8d-7e6f5a4b3c2d",
    "status-details": "MMS request accepted and queued for processing and delivery.",
}


async def accept(request: Request) -> Response:
    await request.body()
    return JSONResponse(ANSWER)


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/ep/v2/", accept, methods=["POST"]),
            Route("/ep/v2", accept, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """Prints the ``listening on`` line (with the real port when given port 0) once it accepts."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"bare listening on http://{host}:{port}", flush=True)


async def serve(host: str, port: int) -> None:
    config = uvicorn.Config(
        create_app(),
        host=host,
        port=port,
        loop="none",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    await _Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()

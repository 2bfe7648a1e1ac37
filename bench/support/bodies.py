"""What the load sends: ``sendmms`` bodies and raw requests, and the photo-like JPEG a message points to.

The accept benchmark posts a realistic ~1.5 KB body of 3 slides whose media are never fetched; the pipeline
benchmark's 1-slide message points to a JPEG served by ``MediaOrigin``, in the bench process.
"""

from __future__ import annotations

import io
import json
import random
import secrets
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.gateway import Credentials

BODY_TARGET_BYTES = 1500
Box = tuple[int, int, int, int]


def sendmms_body(creds: Credentials, now: datetime) -> bytes:
    """A realistic sendmms body of ~1.5 KB: 3 valid slides (image + text, audio + image + text, pdf + text)."""
    cdn = "https://cdn.example-retail.com/campaigns/2026/spring-sale"
    data: dict[str, Any] = {
        "action": "sendmms",
        "service-id": creds.service_id,
        "to": creds.to,
        "from": creds.sender,
        "message-subject": "Spring sale: 20% off garden furniture this weekend",
        "fallback-sms-text": (
            "Spring sale at Example Retail: 20% off all garden furniture, Friday to Sunday. "
            "See the catalogue and find your nearest store with the link below. Reply STOP to opt out."
        ),
        "fallback-sms-link-expiration": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "client-reference": f"bench-spring-{secrets.token_hex(6)}",
        "cache-content": True,
        "slide": [
            {
                "image": {"url": f"{cdn}/hero-640x480.jpg?v=3&utm_source=mms&utm_campaign=spring"},
                "message-text": (
                    "Hi Sam! The Example Retail spring sale starts this Friday: 20% off every table, "
                    "chair, parasol and lounger in the garden range, in store and online."
                ),
            },
            {
                "audio": {"url": f"{cdn}/jingle-15s.mp3?v=1"},
                "image": {"url": f"{cdn}/lounger-detail.png?v=2"},
                "message-text": (
                    "Our bestselling teak lounger is now 239.00 instead of 299.00. Weatherproof, "
                    "foldable, and delivered free to your door within five working days."
                ),
            },
            {
                "pdf": {"url": f"{cdn}/catalogue-spring-2026.pdf?v=5"},
                "message-text": "",
            },
        ],
    }
    filler = (
        "The full catalogue lists every product in the sale with sizes, colours and prices. "
        "Offer valid while stocks last; see the website for the terms and conditions. "
    )
    base = len(json.dumps(data, separators=(",", ":")).encode())
    text = ""
    while base + len(text.encode()) < BODY_TARGET_BYTES:
        text += filler
    data["slide"][2]["message-text"] = text[: max(0, BODY_TARGET_BYTES - base)].rstrip() or filler.strip()
    return json.dumps(data, separators=(",", ":")).encode()


def sendmms_request(base: str, creds: Credentials, image_url: str) -> bytes:
    """The raw HTTP/1.1 request of a 1-slide sendmms (text + image), with its headers."""
    now = datetime.now(UTC)
    body = json.dumps(
        {
            "action": "sendmms",
            "service-id": creds.service_id,
            "to": creds.to,
            "from": creds.sender,
            "message-subject": "Your order has shipped",
            "fallback-sms-text": "Your order has shipped: see the photo of your parcel at the link below.",
            "fallback-sms-link-expiration": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "client-reference": "bench-pipeline",
            "slide": [
                {
                    "image": {"url": image_url},
                    "message-text": "Hi Sam, your parcel is on its way: here it is at our depot this morning.",
                }
            ],
        },
        separators=(",", ":"),
    ).encode()
    host = base.removeprefix("http://")
    head = (
        f"POST /ep/v2/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"x-api-key: {creds.api_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def make_jpeg(
    width: int, height: int, quality: int, noise: float = 0.0, shapes: tuple[Box, Box] | None = None
) -> bytes:
    """A photo-like JPEG: colour gradients, some blurred noise (a photo's texture) when ``noise`` > 0, and an
    ellipse and a rectangle (``shapes``, by default placed in proportion to the size)."""
    from PIL import Image, ImageDraw, ImageFilter

    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    img = Image.merge("RGB", (horizontal, vertical, Image.new("L", (width, height), 140)))
    if noise > 0:
        grain = Image.frombytes("RGB", (width, height), random.Random(7).randbytes(width * height * 3))
        img = Image.blend(img, grain.filter(ImageFilter.GaussianBlur(1.2)), noise)
    ellipse, rectangle = shapes or (
        (width // 8, height // 8, width // 2, height * 2 // 3),
        (width * 3 // 5, height // 2, width * 9 // 10, height * 9 // 10),
    )
    draw = ImageDraw.Draw(img)
    draw.ellipse(ellipse, fill=(230, 190, 60))
    draw.rectangle(rectangle, fill=(40, 90, 160))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


PIPELINE_PHOTO = ((40, 30, 170, 160), (190, 120, 300, 220))
"""The shapes of the pipeline benchmark's 320×240 photo."""


class MediaOrigin:
    """Serves one JPEG at ``/photo.jpg`` (HTTP/1.1, Content-Length) and counts the requests."""

    def __init__(self) -> None:
        self.body = make_jpeg(320, 240, 85, shapes=PIPELINE_PHOTO)
        self.requests = 0
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                origin.requests += 1
                if self.path.split("?", 1)[0] != "/photo.jpg":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(origin.body)))
                self.end_headers()
                self.wfile.write(origin.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/photo.jpg"
        self.thread = threading.Thread(target=self.server.serve_forever, name="media-origin", daemon=True)

    def __enter__(self) -> MediaOrigin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

"""``GET /m/{code}`` and ``GET /m/{code}/{position}``: the page a fallback SMS links to, and its files.

When an MMS cannot be delivered as MMS, the recipient gets an SMS with a short link to this page, which
shows the message's slides in a mobile browser: pictures, video and audio inline, each slide's text, and
contact cards, calendar events and PDF documents as downloads. The page and its files stop working (410)
at the page's ``expires_at``.

The code in the URL is only looked up, never trusted: any string answers at most a 404. The page is
plain HTML with one inline style sheet (allowed by its hash), no script and nothing from elsewhere;
every URL on it is relative to the page (``{code}/{position}``), so it works behind a path prefix too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from mmsgate.core.mms import extension_for
from mmsgate.core.model import MediaKind, Message, Part, utcnow
from mmsgate.core.roles import Blobs, Messages
from mmsgate.errors import NotFound

MAX_CODE_LENGTH = 128
"""Longer codes are no code the gateway made: they are refused without a look-up."""

EXPIRED_TEXT = "This content has expired.\n"
NOT_FOUND_TEXT = "No such content.\n"
DEFAULT_TITLE = "Picture message"

_CSS = """\
:root{color-scheme:light dark;--bg:#f2f2f7;--card:#fff;--ink:#1c1c1e;--muted:#6e6e73;--line:#d8d8de;\
--accent:#0a64d8;--badge:#e8eefb}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);\
font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:40rem;margin:0 auto;padding:16px 12px 8px}
h1{font-size:1.3rem;line-height:1.3;margin:4px 4px 16px;overflow-wrap:anywhere}
.slide{background:var(--card);border-radius:14px;padding:12px;margin:0 0 14px;\
box-shadow:0 1px 3px rgba(0,0,0,.08)}
.slide>*+*{margin-top:12px}
img,video{display:block;max-width:100%;height:auto;margin-left:auto;margin-right:auto;border-radius:10px;\
background:var(--bg)}
video,audio{width:100%}
audio{display:block}
.text{margin-bottom:0;white-space:pre-wrap;overflow-wrap:anywhere}
.slide>.text:first-child{margin-top:0}
.save{display:block;font-size:.85rem;color:var(--muted);text-align:right}
a{color:var(--accent)}
.file{display:flex;align-items:center;gap:12px;padding:10px;border:1px solid var(--line);border-radius:10px;\
color:inherit;text-decoration:none}
.badge{flex:none;width:46px;height:46px;border-radius:8px;background:var(--badge);color:var(--accent);\
display:flex;align-items:center;justify-content:center;font-weight:700;font-size:.8rem;letter-spacing:.04em}
.name{display:block;font-weight:600}
.meta{display:block;font-size:.85rem;color:var(--muted)}
footer{color:var(--muted);font-size:.8rem;text-align:center;padding:4px 16px 24px}
@media (prefers-color-scheme:dark){:root{--bg:#000;--card:#1c1c1e;--ink:#f2f2f7;--muted:#98989f;\
--line:#3a3a3c;--accent:#4c9bff;--badge:#1e3050}}
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; media-src 'self'; "
    f"style-src 'sha256-{_CSS_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
FILE_POLICY = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
"""For a file opened on its own: the browser's built-in viewers still work, nothing in the file runs."""

_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}

_DOWNLOADS: dict[MediaKind, tuple[str, str]] = {
    MediaKind.CONTACT: ("Contact card", "contact"),
    MediaKind.CALENDAR: ("Calendar event", "event"),
    MediaKind.PDF: ("PDF document", "document"),
}
"""Kinds offered as downloads: their label on the page and the stem of their file name."""
_INLINE_STEMS = {MediaKind.IMAGE: "picture", MediaKind.AUDIO: "audio", MediaKind.VIDEO: "video"}
_MEDIA_RANK = {MediaKind.IMAGE: 0, MediaKind.VIDEO: 0, MediaKind.AUDIO: 1}
"""Order of a slide's media on the page: picture or video, then sound, then downloads."""


def _plain(text: str, status: int, cache: str = "no-store") -> Response:
    return Response(text, status_code=status, media_type="text/plain", headers={**_COMMON, "Cache-Control": cache})


def _valid_code(code: str) -> bool:
    return 0 < len(code) <= MAX_CODE_LENGTH and code.isascii() and code.isprintable()


def file_name(part: Part) -> str:
    """The name a part's file is saved under: ``document.pdf``, ``contact.vcf``, ``picture.jpg``..."""
    stem = _DOWNLOADS[part.kind][1] if part.kind in _DOWNLOADS else _INLINE_STEMS.get(part.kind, "file")
    return f"{stem}.{extension_for(part.content_type)}"


def human_size(size: int) -> str:
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _until(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%B %Y, %H:%M} UTC"


def _text(text: str) -> str:
    """Slide text as HTML: escaped, its line breaks kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(escape(line) for line in lines)


def _size_attrs(part: Part) -> str:
    if part.width > 0 and part.height > 0:
        return f' width="{part.width}" height="{part.height}"'
    return ""


def _media_html(part: Part, href: str) -> str:
    src = escape(href)
    if part.kind is MediaKind.IMAGE:
        return f'<img src="{src}"{_size_attrs(part)} alt="Picture">'
    if part.kind is MediaKind.VIDEO:
        return (
            f'<video src="{src}"{_size_attrs(part)} controls preload="metadata" playsinline></video>'
            f'<a class="save" href="{src}" download>Save video ({human_size(part.size)})</a>'
        )
    if part.kind is MediaKind.AUDIO:
        return (
            f'<audio src="{src}" controls preload="metadata"></audio>'
            f'<a class="save" href="{src}" download>Save audio ({human_size(part.size)})</a>'
        )
    label = _DOWNLOADS[part.kind][0] if part.kind in _DOWNLOADS else "File"
    badge = extension_for(part.content_type).upper()[:4]
    return (
        f'<a class="file" href="{src}" download>'
        f'<span class="badge" aria-hidden="true">{escape(badge)}</span>'
        f'<span><span class="name">{escape(label)}</span>'
        f'<span class="meta">{escape(file_name(part))} · {human_size(part.size)}</span></span></a>'
    )


def render_page(code: str, message: Message, parts: Sequence[Part], expires_at: datetime) -> str:
    """The hosted page of a message: its subject and slides, in order."""
    subject = message.sending.subject
    title = escape(subject if subject else DEFAULT_TITLE)
    base = quote(code, safe="")
    slides = message.sending.slides
    groups: list[tuple[str | None, list[Part]]] = [(slide.text, []) for slide in slides]
    strays: list[Part] = []
    for part in sorted(parts, key=lambda p: p.position):
        (groups[part.slide - 1][1] if 1 <= part.slide <= len(slides) else strays).append(part)
    if strays:  # media of no slide (never expected): still shown rather than silently left out
        groups.append((None, strays))
    sections: list[str] = []
    for number, (text, media) in enumerate(groups, 1):
        body = [
            _media_html(p, f"{base}/{p.position}")
            for p in sorted(media, key=lambda p: (_MEDIA_RANK.get(p.kind, 2), p.position))
        ]
        if text:
            body.append(f'<p class="text">{_text(text)}</p>')
        if not body:
            continue
        label = f"Slide {number} of {len(groups)}"
        sections.append(f'<section class="slide" aria-label="{label}">{"".join(body)}</section>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n"
        + "\n".join(sections)
        + f"\n</main>\n<footer>Available until {_until(expires_at)}.</footer>\n</body>\n</html>\n"
    )


class HostedContent:
    def __init__(self, messages: Messages, blobs: Blobs) -> None:
        self.messages = messages
        self.blobs = blobs

    async def _open(self, code: str) -> tuple[Message, list[Part], datetime] | Response:
        """The message of a live page, its parts and the page's expiry; or the answer that refuses it."""
        if not _valid_code(code):
            return _plain(NOT_FOUND_TEXT, 404)
        try:
            page = await self.messages.find_hosted_page(code)
        except NotFound:
            return _plain(NOT_FOUND_TEXT, 404)
        if utcnow() >= page.expires_at:
            return _plain(EXPIRED_TEXT, 410)
        try:
            message = await self.messages.find_message(page.tracking_id)
        except NotFound:
            return _plain(NOT_FOUND_TEXT, 404)
        return message, await self.messages.list_parts(page.tracking_id), page.expires_at

    @staticmethod
    def _cache(expires_at: datetime) -> str:
        seconds = int((expires_at - utcnow()).total_seconds())
        return f"private, max-age={max(0, seconds)}"

    async def page(self, request: Request) -> Response:
        code = request.path_params["code"]
        opened = await self._open(code)
        if isinstance(opened, Response):
            return opened
        message, parts, expires_at = opened
        headers = {**_COMMON, "Cache-Control": self._cache(expires_at), "Content-Security-Policy": PAGE_POLICY}
        return HTMLResponse(render_page(code, message, parts, expires_at), headers=headers)

    async def file(self, request: Request) -> Response:
        opened = await self._open(request.path_params["code"])
        if isinstance(opened, Response):
            return opened
        _, parts, expires_at = opened
        position = request.path_params["position"]
        part = next((p for p in parts if p.position == position), None)
        if part is None:
            return _plain(NOT_FOUND_TEXT, 404)
        path = self.blobs.path(part.sha256)
        try:
            stat = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return _plain(NOT_FOUND_TEXT, 404)
        return FileResponse(
            path,
            media_type=part.content_type,
            filename=file_name(part),
            content_disposition_type="attachment" if part.kind in _DOWNLOADS else "inline",
            stat_result=stat,
            headers={**_COMMON, "Cache-Control": self._cache(expires_at), "Content-Security-Policy": FILE_POLICY},
        )

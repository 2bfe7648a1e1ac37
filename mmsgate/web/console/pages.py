"""What the console's pages show, built from store records: no HTTP here, no HTML (the templates do that)."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec

from mmsgate.core.codes import MessageState
from mmsgate.core.lifecycle import is_final
from mmsgate.core.mms import Mms, extension_for
from mmsgate.core.model import Event, MediaKind, Message, Part, Slide, iso, slides_to_wire
from mmsgate.core.records import Inbound, SandboxSms
from mmsgate.core.retry import RETRYING, FailedAttempt

_mms = msgspec.json.Decoder(Mms)

GOOD_STATES = frozenset({MessageState.DELIVERED.value, MessageState.SMS_DELIVERED.value, "ready"})
BAD_STATES = frozenset(
    {
        MessageState.REJECTED.value,
        MessageState.FAILED.value,
        MessageState.EXPIRED.value,
        MessageState.SMS_FAILED.value,
        "failed",
    }
)

INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})
"""Pictures shown in pages; every other file type is served as a download (never rendered as a page)."""


def state_class(state: str) -> str:
    """The badge style of a message or template state."""
    if state in GOOD_STATES:
        return "good"
    if state in BAD_STATES:
        return "bad"
    return "busy"


def reason_of(message: Message, last: Event | None) -> str | None:
    """Why a message stands where it does, for its row in the list: the failed attempt its work is being
    retried after, or the failure, rejection or expiry that ended it; None for a message on its way."""
    if last is None:
        return None
    if last.status == RETRYING and not is_final(message.state):
        return last.details
    if message.state.value in BAD_STATES:
        return f"{last.code}: {last.details}" if last.code else last.details
    return None


@dataclass(frozen=True, slots=True)
class Retrying:
    """The failed attempt a message's work is being retried after, for its page."""

    attempt: FailedAttempt
    at: datetime


def retrying(message: Message, events: Sequence[Event]) -> Retrying | None:
    if is_final(message.state) or not events or events[-1].status != RETRYING:
        return None
    failed = FailedAttempt.parse(events[-1].details)
    return None if failed is None else Retrying(failed, events[-1].created_at)


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def request_of(message: Message) -> str:
    """The request as it was received, rebuilt from the stored message (fields left at their defaults
    are not shown; a ``sendsavedmms`` shows its template's slides separately)."""
    s = message.sending
    body: dict[str, Any] = {"action": "sendsavedmms" if message.mms_id else "sendmms"}
    if message.mms_id:
        body["mms-id"] = message.mms_id
    body.update({"service-id": message.service_id, "to": message.to, "from": message.sender})
    if message.from_mask:
        body["from-mask"] = message.from_mask
    if s.subject is not None:
        body["message-subject"] = s.subject
    if s.fallback_sms_text is not None:
        body["fallback-sms-text"] = s.fallback_sms_text
    if s.disable_fallback_sms:
        body["disable-fallback-sms"] = True
    if s.disable_fallback_sms_link:
        body["disable-fallback-sms-link"] = True
    if s.fallback_link_expires_at is not None:
        body["fallback-sms-link-expiration"] = iso(s.fallback_link_expires_at)
    body["mms-expiry-timestamp"] = iso(message.expires_at)
    if s.client_reference is not None:
        body["client-reference"] = s.client_reference
    if not message.cache_content:
        body["cache-content"] = False
    if not message.mms_id:
        body["slide"] = slides_to_wire(s.slides)
    return json.dumps(body, indent=2, ensure_ascii=False)


@dataclass
class Shown:
    """One file as a page shows it: a picture, a player, a text, or a download."""

    how: str
    """``image``, ``video``, ``audio``, ``text`` or ``file``."""
    url: str = ""
    text: str = ""
    name: str = ""
    content_type: str = ""
    size: int = 0
    details: str = ""


def shown(url: str, content_type: str, size: int, name: str, *, kind: MediaKind | None = None) -> Shown:
    base = content_type.split(";", 1)[0].strip().lower()
    if base in INLINE_TYPES and kind in (None, MediaKind.IMAGE):
        how = "image"
    elif base.startswith("video/") and kind in (None, MediaKind.VIDEO):
        how = "video"
    elif base.startswith("audio/") and kind in (None, MediaKind.AUDIO):
        how = "audio"
    else:
        how = "file"
    return Shown(how, url=url, name=name, content_type=content_type, size=size)


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@dataclass
class SlideView:
    number: int
    text: str | None
    media: list[tuple[str, str]]
    """As requested: (kind, URL)."""
    parts: list[tuple[Part, Shown]]
    """As prepared, each with its preview."""


def slide_views(owner_id: str, slides: Sequence[Slide], parts: Sequence[Part]) -> list[SlideView]:
    views = [
        SlideView(n, slide.text, [(m.kind.value, m.url) for m in slide.media], []) for n, slide in enumerate(slides, 1)
    ]
    for part in sorted(parts, key=lambda p: p.position):
        if 1 <= part.slide <= len(views):
            url = f"/console/media/{quote(owner_id, safe='')}/{part.position}"
            name = f"slide{part.slide}-{part.position}.{extension_for(part.content_type)}"
            item = shown(url, part.content_type, part.size, name, kind=part.kind)
            details = [part.content_type, human_size(part.size)]
            if part.width and part.height:
                details.append(f"{part.width}×{part.height}")
            if part.duration:
                details.append(f"{part.duration:.1f} s")
            if part.adapted:
                details.append("adapted to the carrier profile")
            item.details = " · ".join(details)
            views[part.slide - 1].parts.append((part, item))
    return views


@dataclass
class Bubble:
    """One message in a phone's conversation."""

    direction: str
    """``in`` (the phone received it) or ``out`` (the phone sent it)."""
    kind: str
    """``MMS`` or ``SMS``."""
    at: datetime
    peer: str
    subject: str | None = None
    slides: list[list[Shown]] = field(default_factory=list)
    ident: str = ""
    tracking_id: str | None = None


def received_mms(number: str, carrier_message_id: str, mms_json: str, delivered_at: datetime) -> Bubble:
    mms = _mms.decode(mms_json)
    slides: dict[int, list[Shown]] = {}
    for part in mms.parts:
        if part.data is not None and part.content_type.lower().startswith("text/plain"):
            item = Shown("text", text=part.data.decode("utf-8", "replace"))
        else:
            url = f"/console/phones/{number}/inbox/{quote(carrier_message_id, safe='')}/{quote(part.location, safe='')}"
            item = shown(url, part.content_type, part.size, part.location)
            item.details = human_size(part.size)
        slides.setdefault(part.slide, []).append(item)
    return Bubble(
        "in",
        "MMS",
        delivered_at,
        mms.from_mask or mms.sender,
        mms.subject,
        [slides[n] for n in sorted(slides)],
        carrier_message_id,
        mms.tracking_id,
    )


def received_sms(sms: SandboxSms) -> Bubble:
    return Bubble("in", "SMS", sms.received_at, sms.sender, None, [[Shown("text", text=sms.text)]], sms.message_id)


def sent_mms(number: str, inbound: Inbound, data: dict[str, bytes]) -> Bubble:
    """``data``: the bytes of the sent text parts, by their blob's SHA-256."""
    items: list[Shown] = []
    for part in inbound.parts:
        if part.content_type.lower().startswith("text/plain") and part.sha256 in data:
            items.append(Shown("text", text=data[part.sha256].decode("utf-8", "replace")))
            continue
        url = f"/console/phones/{number}/sent/{quote(inbound.id, safe='')}/{part.position}"
        item = shown(url, part.content_type, part.size, part.name)
        item.details = human_size(part.size)
        items.append(item)
    return Bubble("out", "MMS", inbound.created_at, inbound.recipient, inbound.subject, [items], inbound.id, inbound.id)


def day_range(since: str, until: str) -> tuple[datetime | None, datetime | None]:
    """A date range from two ``YYYY-MM-DD`` inputs (UTC; both days included); ValueError if malformed."""
    start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC) if since else None
    end = datetime.strptime(until, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1) if until else None
    return start, end


def cursor_of(message: Message) -> str:
    return f"{message.created_at.timestamp()!r}~{message.tracking_id}"


def parse_cursor(value: str) -> tuple[float, str] | None:
    created, _, tracking_id = value.partition("~")
    try:
        moment = float(created)
    except ValueError:
        return None
    return (moment, tracking_id) if tracking_id and moment == moment else None


_KINDS_BY_TYPE = {
    "text/vcard": MediaKind.CONTACT,
    "text/x-vcard": MediaKind.CONTACT,
    "text/directory": MediaKind.CONTACT,
    "text/calendar": MediaKind.CALENDAR,
    "application/pdf": MediaKind.PDF,
}


def kind_of_file(content_type: str, name: str) -> MediaKind | None:
    """The slide media kind of an uploaded file, from its type (or its name's extension); None if unknown."""
    base = content_type.split(";", 1)[0].strip().lower()
    if not base or base == "application/octet-stream":
        base = (mimetypes.guess_type(name, strict=False)[0] or "").lower()
    if base in _KINDS_BY_TYPE:
        return _KINDS_BY_TYPE[base]
    for prefix, kind in (("image/", MediaKind.IMAGE), ("audio/", MediaKind.AUDIO), ("video/", MediaKind.VIDEO)):
        if base.startswith(prefix):
            return kind
    return None

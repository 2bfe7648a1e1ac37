"""The receiving side of postbacks: check the signature, then read the body into a typed event.

A postback (contract section 4) is one of three kinds, told apart by its fields:

- :class:`MessageEvent`: ``origin`` ``MMS_MT`` with ``to`` and ``from``, a step in a message's life
  (N101 sent, N102 delivered, E102 rejected, …);
- :class:`TemplateEvent`: ``origin`` ``MMS_MT`` without ``to``, a saved template is ready (N003) or
  failed (E002 / E003 / E004);
- :class:`InboundEvent`: ``origin`` ``MMS_MO``, code N401, an MMS a handset sent to one of the account's
  numbers.

Errors::

    ValueError
     └── PostbackError        the body is not a postback (not JSON, a required field missing or mistyped)
          └── SignatureError  the signature header is missing, malformed, stale or wrong

:func:`receive` checks the signature on the raw bytes before anything is parsed; :func:`parse` only reads.
Fields this module does not know are ignored (a :class:`MessageEvent` keeps them in ``extra``), so a
receiver keeps working when the gateway adds some.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mmsgate.postbacks import DEFAULT_TOLERANCE, verify

FINAL_CODES = frozenset({"N102", "N103", "E101", "E102", "E011", "E012", "E013", "N202", "E202", "E999"})
"""Codes after which a message has no further postback: it was delivered, or it never will be."""

TEMPLATE_CODES = frozenset({"N003", "E002", "E003", "E004"})
"""Codes of a saved template's processing."""

_MESSAGE_FIELDS = frozenset(
    {
        "origin",
        "code",
        "sent-as",
        "status",
        "status-details",
        "tracking-id",
        "client-reference",
        "mms-id",
        "to",
        "from",
        "operator-id",
        "timestamp",
        "event-id",
    }
)


class PostbackError(ValueError):
    """The body is not a postback: not UTF-8 JSON, not an object, or a required field missing or mistyped."""


class SignatureError(PostbackError):
    """The ``X-Mmsgate-Signature`` header does not prove the body came from the gateway (missing, malformed,
    made with another secret, or older than the tolerance)."""


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A step in a sent message's life (``origin`` ``MMS_MT``). ``sent_as`` (``MMS`` or ``SMS``) is set on
    codes about delivery; ``extra`` holds any other fields, such as ``handset``."""

    code: str
    status: str
    status_details: str
    tracking_id: str
    event_id: str
    timestamp: datetime
    to: str
    sender: str
    sent_as: str | None
    client_reference: str | None
    mms_id: str | None
    operator_id: str | None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def final(self) -> bool:
        """True when no further postback follows for this message (N102, N103, E101, E102, E011–E013,
        N202, E202, E999); False for N101 and N013, which are steps on the way."""
        return self.code in FINAL_CODES


@dataclass(frozen=True, slots=True)
class TemplateEvent:
    """The end of a saved template's processing: N003 ready, or E002 / E003 / E004 (audio / video / image
    failed; the template cannot be sent)."""

    code: str
    status: str
    status_details: str
    tracking_id: str
    mms_id: str
    event_id: str
    timestamp: datetime
    client_reference: str | None

    @property
    def ready(self) -> bool:
        """True when the template can be sent (N003)."""
        return self.code == "N003"


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """An MMS a handset sent to one of the account's numbers (``origin`` ``MMS_MO``, code N401). ``files``
    are the URLs of its parts in order (text parts are ``.txt`` files); ``copy_to`` the other recipients of
    a group MMS."""

    sender: str
    to: str
    keyword: str | None
    tracking_id: str
    operator_id: str | None
    timestamp: datetime
    subject: str | None
    files: tuple[str, ...]
    copy_to: tuple[str, ...]
    event_id: str


Event = MessageEvent | TemplateEvent | InboundEvent


def _required(data: Mapping[str, Any], name: str) -> str:
    if name not in data or data[name] is None:
        raise PostbackError(f"not a postback: the field {name!r} is missing")
    value = data[name]
    if not isinstance(value, str):
        raise PostbackError(f"not a postback: the field {name!r} is not a string")
    return value


def _optional(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PostbackError(f"not a postback: the field {name!r} is not a string")
    return value


def _timestamp(data: Mapping[str, Any]) -> datetime:
    text = _required(data, "timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PostbackError(f"not a postback: the field 'timestamp' is not an ISO 8601 time: {text!r}") from None
    # The gateway always writes UTC with a Z; a time without an offset is read as UTC too.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _items(data: Mapping[str, Any], name: str, key: str, *, required: bool) -> tuple[str, ...]:
    """The ``key`` strings of a list of objects, as ``content`` ([{"file": url}]) and ``copy-to`` carry."""
    if data.get(name) is None:
        if required:
            raise PostbackError(f"not a postback: the field {name!r} is missing")
        return ()
    items = data[name]
    if not isinstance(items, list):
        raise PostbackError(f"not a postback: the field {name!r} is not a list")
    values: list[str] = []
    for item in items:
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str):
            raise PostbackError(f"not a postback: every item of {name!r} needs a string {key!r}")
        values.append(value)
    return tuple(values)


def _message(data: Mapping[str, Any]) -> MessageEvent:
    return MessageEvent(
        code=_required(data, "code"),
        status=_required(data, "status"),
        status_details=_required(data, "status-details"),
        tracking_id=_required(data, "tracking-id"),
        event_id=_required(data, "event-id"),
        timestamp=_timestamp(data),
        to=_required(data, "to"),
        sender=_required(data, "from"),
        sent_as=_optional(data, "sent-as"),
        client_reference=_optional(data, "client-reference"),
        mms_id=_optional(data, "mms-id"),
        operator_id=_optional(data, "operator-id"),
        extra={k: v for k, v in data.items() if k not in _MESSAGE_FIELDS},
    )


def _template(data: Mapping[str, Any]) -> TemplateEvent:
    return TemplateEvent(
        code=_required(data, "code"),
        status=_required(data, "status"),
        status_details=_required(data, "status-details"),
        tracking_id=_required(data, "tracking-id"),
        mms_id=_required(data, "mms-id"),
        event_id=_required(data, "event-id"),
        timestamp=_timestamp(data),
        client_reference=_optional(data, "client-reference"),
    )


def _inbound(data: Mapping[str, Any]) -> InboundEvent:
    code = _required(data, "code")
    if code != "N401":
        raise PostbackError(f"not a postback: an MMS_MO postback has code 'N401', not {code!r}")
    return InboundEvent(
        sender=_required(data, "from"),
        to=_required(data, "to"),
        keyword=_optional(data, "keyword"),
        tracking_id=_required(data, "tracking-id"),
        operator_id=_optional(data, "operator-id"),
        timestamp=_timestamp(data),
        subject=_optional(data, "message-subject"),
        files=_items(data, "content", "file", required=True),
        copy_to=_items(data, "copy-to", "number", required=False),
        event_id=_required(data, "event-id"),
    )


def parse(body: bytes | str) -> MessageEvent | TemplateEvent | InboundEvent:
    """The event a postback body describes. Raises :class:`PostbackError` naming the problem when the body
    is not UTF-8 JSON, not an object, or lacks (or mistypes) a field its kind requires. Unknown fields are
    ignored. This does not check the signature: use :func:`receive` for bodies from the network."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PostbackError(f"not a postback: the body is not UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PostbackError("not a postback: the body is not a JSON object")
    origin = _required(data, "origin")
    if origin == "MMS_MO":
        return _inbound(data)
    if origin != "MMS_MT":
        raise PostbackError(f"not a postback: unknown origin {origin!r} (MMS_MT or MMS_MO)")
    if data.get("to") is None and _required(data, "code") in TEMPLATE_CODES:
        return _template(data)
    return _message(data)


def receive(
    secret: str, header: str | None, body: bytes, *, tolerance: float = DEFAULT_TOLERANCE
) -> MessageEvent | TemplateEvent | InboundEvent:
    """Check the ``X-Mmsgate-Signature`` ``header`` of the raw ``body`` with the account's postback
    ``secret``, then :func:`parse` it.

    Raises :class:`SignatureError` (a :class:`PostbackError` whose message starts with "signature") when
    the signature does not verify or is older than ``tolerance`` seconds, before the body is read; raises
    :class:`PostbackError` when a correctly signed body is not a postback."""
    if not secret:
        # An empty key would accept signatures anyone can make.
        raise SignatureError("signature cannot be checked: the secret is empty")
    if not verify(secret, header, body, tolerance=tolerance):
        what = "missing" if not header else "malformed, stale or made with another secret"
        raise SignatureError(f"signature {what}")
    return parse(body)


__all__ = [
    "FINAL_CODES",
    "TEMPLATE_CODES",
    "Event",
    "InboundEvent",
    "MessageEvent",
    "PostbackError",
    "SignatureError",
    "TemplateEvent",
    "parse",
    "receive",
]

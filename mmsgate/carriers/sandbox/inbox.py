"""A sandbox handset's inbox as the CLI, the HTTP API and the console show it: each MMS with its parts
described (text inline), one part's bytes, and each SMS."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from mmsgate.core.mms import Mms, MmsPart
from mmsgate.core.model import iso
from mmsgate.core.records import SandboxSms
from mmsgate.core.roles import SandboxState

_mms = msgspec.json.Decoder(Mms)


async def inbox_part(state: SandboxState, number: str, carrier_message_id: str, location: str) -> MmsPart | None:
    """One part of an MMS in a handset's inbox, by the MMS's carrier message id and the part's location."""
    for received_id, mms_json, _ in await state.sandbox_inbox(number, limit=1000):
        if received_id == carrier_message_id:
            return next((p for p in _mms.decode(mms_json).parts if p.location == location), None)
    return None


def inbox_entry(carrier_message_id: str, mms_json: str, delivered_at: datetime) -> dict[str, Any]:
    """One inbox message as the CLI and the API show it: text parts inline, media described."""
    mms = _mms.decode(mms_json)
    parts: list[dict[str, Any]] = []
    for part in mms.parts:
        entry: dict[str, Any] = {
            "slide": part.slide,
            "content-id": part.content_id,
            "location": part.location,
            "content-type": part.content_type,
            "size": part.size,
        }
        if part.data is not None:
            entry["text"] = part.data.decode("utf-8", "replace")
        if part.sha256 is not None:
            entry["sha256"] = part.sha256
        parts.append(entry)
    return {
        "carrier-message-id": carrier_message_id,
        "tracking-id": mms.tracking_id,
        "from": mms.from_mask or mms.sender,
        "to": mms.to,
        "subject": mms.subject,
        "delivered": iso(delivered_at),
        "smil": mms.smil,
        "parts": parts,
    }


def sms_entry(sms: SandboxSms) -> dict[str, object]:
    """A received SMS as the sandbox API and CLI show it."""
    return {
        "message-id": sms.message_id,
        "tracking-id": sms.tracking_id,
        "from": sms.sender,
        "text": sms.text,
        "received": iso(sms.received_at),
    }

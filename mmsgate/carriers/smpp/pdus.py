"""SMPP 3.4 values and the PDUs we read ourselves: command statuses, TLV tags, a received deliver_sm, the
delivery receipt or MO segment it carries, and the addresses and validity of a submit_sm.

Received PDUs are parsed here rather than by aiosmpplib: the library decodes short_message into text and
drops the octets (the UDH, GSM escapes), and raises on command_status values and data codings its enums do
not know. What we send is built with its PDU classes; the addresses and validity below are their inputs.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiosmpplib import NPI, TON, PhoneNumber, SmppCommandStatus

from mmsgate.carriers.smpp.encoding import concat_info
from mmsgate.core.records import SmsReceipt, SmsStatus
from mmsgate.errors import CarrierRejected

log = logging.getLogger("mmsgate.smpp")

# command_status values (SMPP 3.4 section 5.1.3)
ROK = 0x00
RSYSERR = 0x08
RINVBNDSTS = 0x04
RALYBND = 0x05
RINVSRCADR = 0x0A
RINVDSTADR = 0x0B
RINVMSGLEN = 0x01
RMSGQFUL = 0x14
RSUBMITFAIL = 0x45
RTHROTTLED = 0x58
RX_T_APPN = 0x64
RX_P_APPN = 0x65
RINVCMDID = 0x03
RUNKNOWNERR = 0xFF
THROTTLED = frozenset({RTHROTTLED, RMSGQFUL})
RETRY_ONCE = frozenset({RSYSERR, RSUBMITFAIL, RUNKNOWNERR})
"""An SMSC-side fault: one more try, then give up as busy."""
BUSY = frozenset({RINVBNDSTS})
"""The SMSC does not consider us bound: a transient state, not a verdict on the message."""

# TLV tags
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F

_STAT_STATUS = {
    "DELIVRD": SmsStatus.DELIVERED,
    "DELIVERED": SmsStatus.DELIVERED,
    "EXPIRED": SmsStatus.EXPIRED,
    "UNDELIV": SmsStatus.FAILED,
    "UNDELIVERABLE": SmsStatus.FAILED,
    "REJECTD": SmsStatus.FAILED,
    "REJECTED": SmsStatus.FAILED,
    "DELETED": SmsStatus.FAILED,
    "UNKNOWN": SmsStatus.FAILED,
    "ACCEPTD": SmsStatus.ENROUTE,
    "ACCEPTED": SmsStatus.ENROUTE,
    "ENROUTE": SmsStatus.ENROUTE,
}
_STATE_STAT = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
_RECEIPT_FIELD = re.compile(r"(?i)\b(id|stat|err):(\S*)")


def status_text(status: int) -> str:
    """``ESME_RTHROTTLED (0x00000058)``: an SMPP command_status by name and number."""
    try:
        name = SmppCommandStatus(status).name
    except ValueError:
        name = "vendor-specific status"
    return f"{name} (0x{status:08X})"


def status_code(status: int) -> str:
    """``0x00000058``: a command_status as the code of a CarrierError."""
    return f"0x{status:08X}"


# ---------------------------------------------------------------------------------------------
# received deliver_sm


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """The fields of a received deliver_sm that we use."""

    source: str
    destination: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)


def parse_deliver_sm(body: bytes) -> DeliverSm:
    """The fields of a deliver_sm body we use; raises ValueError when it is malformed."""
    at = 0

    def cstring() -> str:
        nonlocal at
        end = body.index(0, at)  # ValueError when unterminated
        value = body[at:end].decode("latin-1")
        at = end + 1
        return value

    def octets(count: int) -> bytes:
        nonlocal at
        value = body[at : at + count]
        if len(value) != count:
            raise ValueError("deliver_sm body ends early")
        at += count
        return value

    cstring()  # service_type
    octets(2)  # source_addr_ton, source_addr_npi
    source = cstring()
    octets(2)  # dest_addr_ton, dest_addr_npi
    destination = cstring()
    esm_class = octets(3)[0]  # with protocol_id, priority_flag
    cstring()  # schedule_delivery_time
    cstring()  # validity_period
    fixed = octets(5)  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
    data_coding, sm_length = fixed[2], fixed[4]
    short_message = octets(sm_length)
    tlvs: dict[int, bytes] = {}
    while at + 4 <= len(body):
        tag, length = struct.unpack_from("!HH", body, at)
        at += 4
        tlvs[tag] = octets(length)
    return DeliverSm(source, destination, esm_class, data_coding, short_message, tlvs)


def _tlv_int(tlvs: dict[int, bytes], tag: int) -> int | None:
    value = tlvs.get(tag)
    return int.from_bytes(value, "big") if value else None


def parse_receipt(message: DeliverSm, connector: str) -> SmsReceipt | None:
    """The receipt a deliver_sm (message type 0x04) carries; None without a message id."""
    payload = message.short_message or message.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    text = payload.decode("utf-16-be", "replace") if message.data_coding == 0x08 else payload.decode("latin-1")
    fields: dict[str, str] = {}
    for key, value in _RECEIPT_FIELD.findall(text):
        fields.setdefault(key.lower(), value)
    raw_id = message.tlvs.get(TLV_RECEIPTED_MESSAGE_ID, b"").split(b"\0", 1)[0].decode("latin-1").strip()
    message_id = raw_id or fields.get("id", "").strip()
    if not message_id:
        return None
    state = _tlv_int(message.tlvs, TLV_MESSAGE_STATE)
    stat = _STATE_STAT.get(state, f"STATE{state}") if state is not None else fields.get("stat", "").upper()
    err = fields.get("err")
    if err is None:
        network_error = message.tlvs.get(TLV_NETWORK_ERROR_CODE)
        err = f"{int.from_bytes(network_error[1:], 'big'):03d}" if network_error and len(network_error) == 3 else "000"
    status = _STAT_STATUS.get(stat)
    if status is None:
        log.warning("receipt for %s has an unknown state %r; taken as still en route", message_id, stat or text)
        status = SmsStatus.ENROUTE
    return SmsReceipt(connector, message_id, status, f"stat:{stat} err:{err}")


def segment_info(message: DeliverSm, udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, seq) of an MO segment, from its UDH or its SAR TLVs."""
    info = concat_info(udh) if udh else None
    if info is None:
        reference = _tlv_int(message.tlvs, TLV_SAR_MSG_REF_NUM)
        total = _tlv_int(message.tlvs, TLV_SAR_TOTAL_SEGMENTS)
        seq = _tlv_int(message.tlvs, TLV_SAR_SEGMENT_SEQNUM)
        if reference is not None and total and seq and 1 <= seq <= total:
            info = (reference, total, seq)
    return info if info is not None and info[1] > 1 else None


# ---------------------------------------------------------------------------------------------
# addresses and validity of a submit_sm


def source_address(sender: str) -> PhoneNumber:
    """Alphanumeric → TON 5 NPI 0; digits of 7 or more (a leading + allowed) → TON 1 NPI 1; shorter
    digits (a short code) → TON 3 NPI 0."""
    digits = sender[1:] if sender.startswith("+") else sender
    if not sender or not sender.isascii() or len(digits) > 20:
        raise CarrierRejected(
            status_code(RINVSRCADR), f"ESME_RINVSRCADR: sender {sender!r} cannot be an SMPP source (checked here)"
        )
    if digits.isdigit():
        if len(digits) >= 7:
            return PhoneNumber(digits, TON.INTERNATIONAL, NPI.ISDN)
        return PhoneNumber(digits, TON.NETWORK_SPECIFIC, NPI.UNKNOWN)
    return PhoneNumber(sender, TON.ALPHANUMERIC, NPI.UNKNOWN)


def destination_address(to: str) -> PhoneNumber:
    digits = to[1:] if to.startswith("+") else to
    if not digits.isdigit() or not digits.isascii() or len(digits) > 20:
        raise CarrierRejected(
            status_code(RINVDSTADR), f"ESME_RINVDSTADR: {to!r} is not an international number (checked here)"
        )
    return PhoneNumber(digits, TON.INTERNATIONAL, NPI.ISDN)


def validity_period(expires_at: datetime | None) -> datetime | None:
    """The expiry in UTC, whole seconds (sent as the absolute time ``YYMMDDhhmmss000+``)."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at.astimezone(UTC).replace(microsecond=0)

"""SMPP 3.4 connector: fallback SMS to an SMSC over one bind (a transceiver, or a transmitter plus a receiver).

The session loop is ours; aiosmpplib 0.7.4 provides the PDU classes that encode what we send (binds,
submit_sm carrying segments we encoded ourselves, enquire_link, unbind and the responses) and the SMPP
enums (command ids, command_status names, TON, NPI). Its ``ESME`` is not used: it answers each deliver_sm
itself with ESME_ROK once its hook returned (a hook that raises drops the connection, or ends the ESME,
instead of answering an error), re-encodes and re-splits short_message from text with its own UDH
reference (or moves it into message_payload), reports a submit's outcome to hooks rather than to the
caller, and does not resend a throttled submit_sm. Received PDUs are parsed here too: the library decodes
short_message into text and drops the octets (the UDH, GSM escapes), and raises on command_status values
and data codings its enums do not know.

Behaviour:

* ``start`` binds (retrying with back-off while the SMSC cannot be reached) and returns once bound; a
  refused bind raises :class:`CarrierError` (not retryable). Afterwards a lost connection is re-bound with
  exponential back-off (``reconnect_min`` to ``reconnect_max``); enquire_link goes out every
  ``enquire_link_interval`` and one unanswered within ``response_timeout`` drops the connection.
* ``submit`` sends each segment (:func:`mmsgate.sms.encoding.encode_sms`) as one submit_sm, at most
  ``window`` outstanding per connector, awaiting ``limiter`` before each. ESME_RTHROTTLED / ESME_RMSGQFUL
  pause every submit of the connector and resend the same segment (the SMSC did not take it), for at most
  ``throttle_budget`` seconds. See :meth:`SmppConnector.submit` for the errors.
* A deliver_sm is answered once the sink returned (ESME_RX_T_APPN when it raised, so the SMSC resends):
  a delivery receipt (TLVs receipted_message_id and message_state first, else the receipt text) goes to
  ``sink.sms_receipt``; an MO, reassembled from its UDH or SAR segments, to ``sink.sms_inbound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from aiosmpplib import (
    NPI,
    TON,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    PhoneNumber,
    SmppCommand,
    SmppCommandStatus,
    SmppDataCoding,
    SubmitSm,
    Unbind,
    UnbindResp,
)

from mmsgate.errors import CarrierBusy, CarrierError, CarrierRejected, ConfigError
from mmsgate.sms.base import (
    InboundSms,
    Sms,
    SmsConnector,
    SmsReceipt,
    SmsSink,
    SmsStatus,
    SmsSubmitResult,
    normalise_id,
)
from mmsgate.sms.encoding import Segment, concat_info, decode_segment, encode_sms

log = logging.getLogger("mmsgate.smpp")

BindKind = Literal["transceiver", "transmitter", "receiver"]

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

_HEADER = struct.Struct("!IIII")
_MAX_PDU = 70_000  # a message_payload of 64 KB and the rest
_THROTTLE_CAP = 30.0
_UNBIND_WAIT = 2.0
_SETTLE_WAIT = 2.0
_PARTIAL_MAX_AGE = 600.0
_STEADY_SECONDS = 5.0
"""A bind that lasted this long resets the reconnect back-off."""

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


@dataclass(frozen=True, slots=True)
class SmppSettings:
    """One SMSC connection. ``bind``: one transceiver bind, or a transmitter and a receiver ("pair")."""

    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind: Literal["transceiver", "pair"] = "transceiver"
    window: int = 10
    """submit_sm PDUs outstanding at most (per connector)."""
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    throttle_backoff: float = 1.0
    """First pause after ESME_RTHROTTLED / ESME_RMSGQFUL; doubles on each further one, up to 30 s."""
    throttle_budget: float = 60.0
    """Seconds a submit keeps resending a throttled segment before it gives up (CarrierBusy)."""


def status_text(status: int) -> str:
    """``ESME_RTHROTTLED (0x00000058)``: an SMPP command_status by name and number."""
    try:
        name = SmppCommandStatus(status).name
    except ValueError:
        name = "vendor-specific status"
    return f"{name} (0x{status:08X})"


def _status_code(status: int) -> str:
    return f"0x{status:08X}"


# ---------------------------------------------------------------------------------------------
# one TCP connection with one bind


class _NotSent(Exception):
    """The PDU did not go out: the connection was already down."""


class _Lost(Exception):
    """The PDU went out, then the connection was lost before its response came."""


class _BindRefused(Exception):
    def __init__(self, kind: BindKind, status: int) -> None:
        super().__init__(f"{kind} bind refused: {status_text(status)}")
        self.status = status


class _Link:
    """A socket to the SMSC: numbers requests and matches their responses, answers enquire_link and unbind,
    hands each deliver_sm to ``on_deliver``. ``closed`` resolves (to the reason) when the link is down."""

    def __init__(
        self,
        kind: BindKind,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_deliver: Callable[[_Link, int, bytes], None],
    ) -> None:
        self.kind = kind
        self.reader = reader
        self.writer = writer
        self.on_deliver = on_deliver
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.bound_at = 0.0
        self.pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._sequence = 0
        self._drain_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = [asyncio.create_task(self._reading(), name=f"smpp-read-{kind}")]

    @property
    def alive(self) -> bool:
        return not self.closed.done()

    def next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    async def send(self, pdu: bytes) -> None:
        """Write a PDU (a response, or a request whose answer nobody awaits)."""
        if not self.alive:
            raise _NotSent(self.closed.result())
        self.writer.write(pdu)
        await self._drain()

    async def request(self, build: Callable[[int], bytes], within: float) -> tuple[int, bytes]:
        """Send the request ``build(sequence_number)`` and return its response's (command_status, body).

        Raises _NotSent when the link was down, _Lost when it went down after the PDU went out,
        TimeoutError when no response came ``within`` seconds."""
        if not self.alive:
            raise _NotSent(self.closed.result())
        sequence = self.next_sequence()
        pdu = build(sequence)
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.pending[sequence] = answer
        try:
            self.writer.write(pdu)
            await self._drain()
            return await asyncio.wait_for(answer, within)
        finally:
            self.pending.pop(sequence, None)

    async def _drain(self) -> None:
        try:
            async with self._drain_lock:
                await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close(f"write failed: {exc!r}")
            raise _Lost(self.closed.result()) from exc

    def keep_alive(self, interval: float, timeout: float) -> None:
        self._tasks.append(asyncio.create_task(self._keeping_alive(interval, timeout), name=f"smpp-ping-{self.kind}"))

    async def _keeping_alive(self, interval: float, within: float) -> None:
        while self.alive:
            await asyncio.sleep(interval)
            try:
                status, _ = await self.request(lambda seq: bytes(EnquireLink(sequence_num=seq).pdu()), within)
            except TimeoutError:
                self.close(f"enquire_link unanswered for {within:g} s")
                return
            except (_NotSent, _Lost):
                return
            if status != ROK:
                log.debug("enquire_link answered %s", status_text(status))

    async def _reading(self) -> None:
        reason = "the SMSC closed the connection"
        try:
            while True:
                length, command, status, sequence = _HEADER.unpack(await self.reader.readexactly(_HEADER.size))
                if not _HEADER.size <= length <= _MAX_PDU:
                    reason = f"the SMSC sent a PDU of impossible length {length}"
                    break
                body = await self.reader.readexactly(length - _HEADER.size) if length > _HEADER.size else b""
                if command & 0x80000000:  # a response, or generic_nack
                    answer = self.pending.pop(sequence, None)
                    if answer is not None and not answer.done():
                        answer.set_result((status, body))
                    elif command != SmppCommand.ENQUIRE_LINK_RESP:
                        log.debug("response 0x%08X to sequence %d that nobody awaits (late?)", command, sequence)
                elif command == SmppCommand.DELIVER_SM:
                    self.on_deliver(self, sequence, body)
                elif command == SmppCommand.ENQUIRE_LINK:
                    await self.send(bytes(EnquireLinkResp(sequence_num=sequence).pdu()))
                elif command == SmppCommand.UNBIND:
                    await self.send(bytes(UnbindResp(sequence_num=sequence).pdu()))
                    reason = "the SMSC unbound"
                    break
                elif command != SmppCommand.ALERT_NOTIFICATION:
                    nack = GenericNack(sequence_num=sequence, command_status=SmppCommandStatus(RINVCMDID))
                    await self.send(bytes(nack.pdu()))
        except asyncio.IncompleteReadError:
            pass
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc!r}"
        except (_NotSent, _Lost):
            reason = "connection lost while answering the SMSC"
        self.close(reason)

    def close(self, reason: str) -> None:
        """Mark the link down (once), fail what awaits a response, close the socket, stop its tasks."""
        if self.closed.done():
            return
        self.closed.set_result(reason)
        for answer in self.pending.values():
            if not answer.done():
                answer.set_exception(_Lost(reason))
        self.pending.clear()
        self.writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def wait_closed(self) -> None:
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


# ---------------------------------------------------------------------------------------------
# received deliver_sm


@dataclass(frozen=True, slots=True)
class _DeliverSm:
    source: str
    destination: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)


def _parse_deliver_sm(body: bytes) -> _DeliverSm:
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
    return _DeliverSm(source, destination, esm_class, data_coding, short_message, tlvs)


def _tlv_int(tlvs: dict[int, bytes], tag: int) -> int | None:
    value = tlvs.get(tag)
    return int.from_bytes(value, "big") if value else None


def _parse_receipt(message: _DeliverSm, connector: str) -> SmsReceipt | None:
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


def _segment_info(message: _DeliverSm, udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, seq) of an MO segment, from its UDH or its SAR TLVs."""
    info = concat_info(udh) if udh else None
    if info is None:
        reference = _tlv_int(message.tlvs, TLV_SAR_MSG_REF_NUM)
        total = _tlv_int(message.tlvs, TLV_SAR_TOTAL_SEGMENTS)
        seq = _tlv_int(message.tlvs, TLV_SAR_SEGMENT_SEQNUM)
        if reference is not None and total and seq and 1 <= seq <= total:
            info = (reference, total, seq)
    return info if info is not None and info[1] > 1 else None


@dataclass
class _Partial:
    """The segments of one concatenated MO received so far."""

    total: int
    started: float
    parts: dict[int, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# addresses


def _source_address(sender: str) -> PhoneNumber:
    """Alphanumeric → TON 5 NPI 0; digits of 7 or more (a leading + allowed) → TON 1 NPI 1; shorter
    digits (a short code) → TON 3 NPI 0."""
    digits = sender[1:] if sender.startswith("+") else sender
    if not sender or not sender.isascii() or len(digits) > 20:
        raise CarrierRejected(
            _status_code(RINVSRCADR), f"ESME_RINVSRCADR: sender {sender!r} cannot be an SMPP source (checked here)"
        )
    if digits.isdigit():
        if len(digits) >= 7:
            return PhoneNumber(digits, TON.INTERNATIONAL, NPI.ISDN)
        return PhoneNumber(digits, TON.NETWORK_SPECIFIC, NPI.UNKNOWN)
    return PhoneNumber(sender, TON.ALPHANUMERIC, NPI.UNKNOWN)


def _destination_address(to: str) -> PhoneNumber:
    digits = to[1:] if to.startswith("+") else to
    if not digits.isdigit() or not digits.isascii() or len(digits) > 20:
        raise CarrierRejected(
            _status_code(RINVDSTADR), f"ESME_RINVDSTADR: {to!r} is not an international number (checked here)"
        )
    return PhoneNumber(digits, TON.INTERNATIONAL, NPI.ISDN)


def _validity(expires_at: datetime | None) -> datetime | None:
    """The expiry in UTC, whole seconds (sent as the absolute time ``YYMMDDhhmmss000+``)."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at.astimezone(UTC).replace(microsecond=0)


# ---------------------------------------------------------------------------------------------
# the connector


class _Throttle:
    """One submit's back-off while the SMSC throttles it."""

    def __init__(self, first: float, budget: float) -> None:
        self.delay = first
        self.budget = budget
        self.since: float | None = None

    def next_delay(self) -> float | None:
        """The pause before the next try; None once ``budget`` seconds would be exceeded."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        delay = self.delay
        if now + delay - self.since > self.budget:
            return None
        self.delay = min(self.delay * 2, _THROTTLE_CAP)
        return delay


class SmppConnector(SmsConnector):
    def __init__(self, settings: SmppSettings, *, limiter: Callable[[], Awaitable[None]] | None = None) -> None:
        if not settings.system_id or len(settings.system_id) > 15:
            raise ConfigError("system_id must be 1 to 15 characters (SMPP 3.4)")
        if len(settings.password) > 8 or len(settings.system_type) > 12:
            raise ConfigError("the password must be at most 8 characters, system_type at most 12 (SMPP 3.4)")
        if settings.bind not in ("transceiver", "pair") or settings.window < 1:
            raise ConfigError("bind must be transceiver or pair, and window at least 1")
        self.name = settings.name
        self.settings = settings
        self._limiter = limiter
        self._sink: SmsSink | None = None
        self._links: list[_Link] = []
        self._bound = asyncio.Event()
        self._closing = asyncio.Event()
        self._window = asyncio.Semaphore(settings.window)
        self._hold_until = 0.0
        self._reference = random.randrange(256)
        self._runner: asyncio.Task[None] | None = None
        self._first_bind: asyncio.Future[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._partial: dict[tuple[str, str, int, int], _Partial] = {}

    @property
    def is_bound(self) -> bool:
        """Whether submits can go out now."""
        return self._bound.is_set()

    # --- binding -------------------------------------------------------------------------------

    async def start(self, sink: SmsSink) -> None:
        """Bind, and return once bound. Raises CarrierError (not retryable) when the SMSC refuses the bind;
        while it cannot be reached, keeps trying (the caller may cancel)."""
        if self._runner is not None:
            raise RuntimeError(f"SMPP connector {self.name} already started")
        self._sink = sink
        self._first_bind = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._supervising(), name=f"smpp-{self.name}")
        try:
            await asyncio.shield(self._first_bind)
        except asyncio.CancelledError:
            if not self._first_bind.done():  # cancelled before the first bind: stop trying
                self._runner.cancel()
            raise

    async def _bind_all(self) -> list[_Link]:
        kinds: tuple[BindKind, ...] = (
            ("transceiver",) if self.settings.bind == "transceiver" else ("transmitter", "receiver")
        )
        links: list[_Link] = []
        try:
            for kind in kinds:
                links.append(await self._bind(kind))
        except BaseException:
            for link in links:
                link.close("bind of its partner failed")
            raise
        return links

    async def _bind(self, kind: BindKind) -> _Link:
        s = self.settings
        reader, writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), s.response_timeout)
        link = _Link(kind, reader, writer, self._on_deliver)
        pdu_class = {"transceiver": BindTransceiver, "transmitter": BindTransmitter, "receiver": BindReceiver}[kind]

        def build(sequence: int) -> bytes:
            bind = pdu_class(
                sequence_num=sequence, system_id=s.system_id, password=s.password, system_type=s.system_type
            )
            return bytes(bind.pdu())

        try:
            status, _ = await link.request(build, s.response_timeout)
        except BaseException:
            link.close("bind did not complete")
            raise
        if status not in (ROK, RALYBND):
            link.close("bind refused")
            raise _BindRefused(kind, status)
        link.bound_at = time.monotonic()
        link.keep_alive(s.enquire_link_interval, s.response_timeout)
        return link

    async def _supervising(self) -> None:
        """Bind, watch the links, re-bind with back-off when one goes down, until closed."""
        s = self.settings
        delay = s.reconnect_min
        while not self._closing.is_set():
            try:
                links = await self._bind_all()
            except _BindRefused as exc:
                if self._first_bind is not None and not self._first_bind.done():
                    self._first_bind.set_exception(
                        CarrierError(
                            _status_code(exc.status),
                            f"bind refused: {status_text(exc.status)} from {s.host}:{s.port} "
                            f"for system_id {s.system_id!r} (SMPP connection {self.name})",
                            retryable=False,
                        )
                    )
                    log.error("SMPP %s: bind refused: %s; not retrying", self.name, status_text(exc.status))
                    return
                log.error("SMPP %s: bind refused: %s; retrying in %.3g s", self.name, exc, delay)
            except (OSError, TimeoutError, _NotSent, _Lost) as exc:
                reason = "no answer" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)
                log.warning(
                    "SMPP %s: cannot bind to %s:%d (%s); retrying in %.3g s", self.name, s.host, s.port, reason, delay
                )
            except Exception:
                log.exception("SMPP %s: binding failed; retrying in %.3g s", self.name, delay)
            else:
                self._links = links
                self._bound.set()
                log.info("SMPP %s: bound to %s:%d as %s", self.name, s.host, s.port, " + ".join(k.kind for k in links))
                if self._first_bind is not None and not self._first_bind.done():
                    self._first_bind.set_result(None)
                done, _ = await asyncio.wait([link.closed for link in links], return_when=asyncio.FIRST_COMPLETED)
                self._bound.clear()
                reason = next(iter(done)).result()
                for link in links:
                    link.close(reason)
                if self._closing.is_set():
                    return
                if time.monotonic() - min(link.bound_at for link in links) >= _STEADY_SECONDS:
                    delay = s.reconnect_min
                log.warning("SMPP %s: connection lost (%s); reconnecting in %.3g s", self.name, reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, s.reconnect_max)

    # --- submitting ----------------------------------------------------------------------------

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    async def submit(self, sms: Sms) -> SmsSubmitResult:
        """Send every segment of the SMS and return the SMSC's id of each.

        Errors: :class:`CarrierBusy` when not bound, closing, or throttled beyond ``throttle_budget`` (or an
        SMSC fault twice) before any segment was taken; :class:`CarrierRejected` for a permanent status
        (or a sender, destination or text that cannot be sent) before any segment was taken; a plain
        :class:`CarrierError` with ``definite=False`` when a submit_sm went out without an answer (no
        response within ``response_timeout``, or the connection dropped) or when a segment failed after
        others were taken."""
        if not self._bound.is_set() or self._closing.is_set():
            raise CarrierBusy("not-bound", f"SMPP connection {self.name} is not bound ({self._state()})")
        source = _source_address(sms.sender)
        destination = _destination_address(sms.to)
        if not sms.text:
            raise CarrierRejected(_status_code(RINVMSGLEN), "ESME_RINVMSGLEN: the SMS text is empty (checked here)")
        try:
            segments = encode_sms(sms.text, reference=self._next_reference())
        except ValueError as exc:
            raise CarrierRejected(_status_code(RINVMSGLEN), f"ESME_RINVMSGLEN: {exc} (checked here)") from exc
        validity = _validity(sms.expires_at)
        throttle = _Throttle(self.settings.throttle_backoff, self.settings.throttle_budget)
        ids: list[str] = []
        for index, segment in enumerate(segments):

            def build(sequence: int, segment: Segment = segment) -> bytes:
                pdu = SubmitSm(
                    sequence_num=sequence,
                    short_message=sms.text,  # only for the library's checks: the octets sent are the segment's
                    source=source,
                    destination=destination,
                    esm_class=segment.esm_class,
                    registered_delivery=1,
                    validity_period=validity,
                    encoding=SmppDataCoding(segment.data_coding).name if segment.data_coding else None,
                    auto_message_payload=False,
                )
                pdu.set_encoded_message(segment.short_message)
                return bytes(pdu.pdu())

            what = f"segment {index + 1}/{len(segments)} of {sms.tracking_id}"
            ids.append(await self._submit_segment(build, what, len(ids), throttle))
        return SmsSubmitResult(tuple(ids))

    def _state(self) -> str:
        return "closed" if self._closing.is_set() else "reconnecting" if self._runner is not None else "not started"

    def _not_taken(self, taken: int, status: str, detail: str, *, retry_after: float | None = None) -> CarrierError:
        """The SMSC did not take this segment: busy when it took none, else uncertain (a retry would send
        the segments taken again)."""
        if taken == 0:
            return CarrierBusy(status, detail, retry_after=retry_after)
        return CarrierError(status, f"{detail}; {taken} segment(s) before it were taken", definite=False)

    async def _ready(self, taken: int, what: str) -> _Link:
        """The link to submit on, once any throttling pause is over. The first segment does not wait for a
        re-bind (CarrierBusy); a later one waits up to ``response_timeout`` so the SMS can be completed."""
        while True:
            if self._closing.is_set():
                raise self._not_taken(taken, "not-bound", f"SMPP connection {self.name} closed before {what} went out")
            wait = self._hold_until - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), wait)
                continue
            if self._bound.is_set() and self._links and self._links[0].alive:
                return self._links[0]
            if taken == 0:
                raise CarrierBusy("not-bound", f"SMPP connection {self.name} is not bound ({self._state()})")
            try:
                await asyncio.wait_for(self._bound.wait(), self.settings.response_timeout)
            except TimeoutError:
                raise self._not_taken(
                    taken, "not-bound", f"SMPP connection {self.name} was not re-bound in time for {what}"
                ) from None

    async def _submit_segment(self, build: Callable[[int], bytes], what: str, taken: int, throttle: _Throttle) -> str:
        timeout = self.settings.response_timeout
        faults = 0
        while True:
            await self._ready(taken, what)
            async with self._window:
                link = await self._ready(taken, what)
                if self._limiter is not None:
                    try:
                        await self._limiter()
                    except Exception as exc:
                        raise self._not_taken(
                            taken, "limiter", f"the send limiter failed before {what}: {exc!r}"
                        ) from exc
                    link = await self._ready(taken, what)
                try:
                    status, body = await link.request(build, timeout)
                except _NotSent:
                    continue  # the link went down just now: _ready decides
                except _Lost as exc:
                    raise CarrierError(
                        "connection-lost",
                        f"{what} went out but the connection to the SMSC dropped before its answer ({exc}); "
                        "the SMSC may have taken it",
                        retryable=False,
                        definite=False,
                    ) from None
                except TimeoutError:
                    raise CarrierError(
                        "no-response",
                        f"no submit_sm_resp for {what} within {timeout:g} s; the SMSC may have taken it",
                        retryable=False,
                        definite=False,
                    ) from None
            if status == ROK:
                message_id = body.split(b"\0", 1)[0].decode("latin-1")
                if not message_id:
                    log.warning("SMPP %s: the SMSC took %s without a message id", self.name, what)
                return normalise_id(message_id)
            name = status_text(status)
            if status in THROTTLED:
                delay = throttle.next_delay()
                if delay is None:
                    raise self._not_taken(
                        taken,
                        _status_code(status),
                        f"{name}: the SMSC still throttled {what} after {throttle.budget:g} s",
                        retry_after=throttle.delay,
                    )
                self._hold_until = max(self._hold_until, time.monotonic() + delay)
                log.info("SMPP %s: throttled by the SMSC (%s); resending %s in %.3g s", self.name, name, what, delay)
                continue
            if status in RETRY_ONCE and faults == 0:
                faults += 1
                log.warning("SMPP %s: %s for %s; trying once more", self.name, name, what)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.settings.throttle_backoff)
                continue
            if status in RETRY_ONCE or status in BUSY:
                raise self._not_taken(taken, _status_code(status), f"{name}: the SMSC did not take {what}")
            if taken == 0:
                raise CarrierRejected(_status_code(status), f"{name}: the SMSC refused {what}")
            raise CarrierError(
                _status_code(status),
                f"{name}: the SMSC refused {what} after taking {taken} segment(s) before it",
                definite=False,
            )

    # --- receiving -----------------------------------------------------------------------------

    def _on_deliver(self, link: _Link, sequence: int, body: bytes) -> None:
        task = asyncio.create_task(self._deliver(link, sequence, body), name=f"smpp-deliver-{sequence}")
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, link: _Link, sequence: int, body: bytes) -> None:
        """Hand a deliver_sm to the sink, then answer it: ESME_ROK once the sink returned, ESME_RX_T_APPN
        when it raised (the SMSC resends), ESME_RX_P_APPN when it cannot be read."""
        status = ROK
        try:
            message = _parse_deliver_sm(body)
        except ValueError as exc:
            log.error("SMPP %s: unreadable deliver_sm (%s): %s", self.name, exc, body[:200].hex())
            status = RX_P_APPN
        else:
            try:
                await self._received(message)
            except ValueError as exc:
                log.error("SMPP %s: cannot read deliver_sm from %s: %s", self.name, message.source, exc)
                status = RX_P_APPN
            except Exception:
                log.exception("SMPP %s: storing a deliver_sm failed; answering ESME_RX_T_APPN", self.name)
                status = RX_T_APPN
        response = DeliverSmResp(sequence_num=sequence, command_status=SmppCommandStatus(status))
        with contextlib.suppress(_NotSent, _Lost):
            await link.send(bytes(response.pdu()))

    async def _received(self, message: _DeliverSm) -> None:
        assert self._sink is not None
        kind = message.esm_class & 0x3C
        if kind == 0x04:
            receipt = _parse_receipt(message, self.name)
            if receipt is None:
                log.warning("SMPP %s: delivery receipt without a message id: %r", self.name, message.short_message)
                return
            await self._sink.sms_receipt(receipt)
        elif kind == 0x00:
            complete = self._reassemble(message)
            if complete is None:
                return
            text, restore = complete
            try:
                await self._sink.sms_inbound(InboundSms(self.name, message.source, message.destination, text))
            except BaseException:
                restore()  # keep the segments: the SMSC resends the last one
                raise
        else:
            log.debug("SMPP %s: ignoring deliver_sm of message type 0x%02X", self.name, kind)

    def _reassemble(self, message: _DeliverSm) -> tuple[str, Callable[[], None]] | None:
        """The MO's full text once every segment is in, with how to put its segments back (should the sink
        fail); None while segments are missing."""
        short_message = message.short_message or message.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
        udh, text = decode_segment(short_message, message.data_coding, has_udh=bool(message.esm_class & 0x40))
        info = _segment_info(message, udh)
        if info is None:
            return text, lambda: None
        reference, total, seq = info
        now = time.monotonic()
        for stale in [k for k, p in self._partial.items() if now - p.started > _PARTIAL_MAX_AGE]:
            log.warning("SMPP %s: dropping an incomplete MO from %s (segments missing)", self.name, stale[0])
            del self._partial[stale]
        key = (message.source, message.destination, reference, total)
        partial = self._partial.setdefault(key, _Partial(total, now))
        partial.parts[seq] = text
        if len(partial.parts) < total:
            return None
        del self._partial[key]
        return "".join(partial.parts[i] for i in range(1, total + 1)), lambda: self._restore(key, partial)

    def _restore(self, key: tuple[str, str, int, int], partial: _Partial) -> None:
        self._partial.setdefault(key, partial)

    # --- closing -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Let outstanding submits be answered (briefly), unbind, close. Submits not yet sent fail with
        CarrierBusy; one still awaiting its answer at the end fails as uncertain."""
        if self._closing.is_set():
            return
        self._closing.set()
        if self._first_bind is not None and not self._first_bind.done():
            self._first_bind.set_exception(CarrierBusy("not-bound", f"SMPP connection {self.name} closed"))
            self._first_bind.exception()  # retrieved: nobody may await it
        links = list(self._links)
        outstanding = [answer for link in links if link.alive for answer in link.pending.values()]
        if outstanding:
            await asyncio.wait(outstanding, timeout=_SETTLE_WAIT)
        for link in links:
            if link.alive:
                with contextlib.suppress(_NotSent, _Lost, TimeoutError):
                    await link.request(lambda seq: bytes(Unbind(sequence_num=seq).pdu()), _UNBIND_WAIT)
            link.close("connector closed")
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, *(link.wait_closed() for link in links), return_exceptions=True)
        self._bound.clear()
        log.info("SMPP %s: closed", self.name)

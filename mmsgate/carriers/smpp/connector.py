"""SMPP 3.4 connector: fallback SMS to an SMSC over one bind (a transceiver, or a transmitter plus a receiver).

Behaviour:

* ``start`` binds (retrying with back-off while the SMSC cannot be reached) and returns once bound; a
  refused bind raises :class:`CarrierError` (not retryable). Afterwards a lost connection is re-bound with
  exponential back-off (``reconnect_min`` to ``reconnect_max``); enquire_link goes out every
  ``enquire_link_interval`` and one unanswered within ``response_timeout`` drops the connection.
* ``submit`` sends each segment (:func:`mmsgate.carriers.smpp.encoding.encode_sms`) as one submit_sm, at
  most ``window`` outstanding per connector, awaiting ``limiter`` before each. ESME_RTHROTTLED /
  ESME_RMSGQFUL pause every submit of the connector and resend the same segment (the SMSC did not take
  it), for at most ``throttle_budget`` seconds. See :meth:`SmppConnector.submit` for the errors.
* A deliver_sm is answered once the sink returned (ESME_RX_T_APPN when it raised, so the SMSC resends):
  a delivery receipt goes to ``sink.sms_receipt``; an MO, reassembled from its segments, to
  ``sink.sms_inbound`` (:class:`~mmsgate.carriers.smpp.receiving.Receiver`).

The connection itself is a :class:`~mmsgate.carriers.smpp.link.Link`; the PDUs it receives are read in
:mod:`mmsgate.carriers.smpp.pdus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiosmpplib import BindReceiver, BindTransceiver, BindTransmitter, SmppDataCoding, SubmitSm, Unbind

from mmsgate.carriers.base import Sms, SmsConnector, SmsSink, SmsSubmitResult
from mmsgate.carriers.smpp.encoding import Segment, encode_sms
from mmsgate.carriers.smpp.link import BindKind, Link, Lost, NotSent
from mmsgate.carriers.smpp.pdus import (
    BUSY,
    RALYBND,
    RETRY_ONCE,
    RINVMSGLEN,
    ROK,
    THROTTLED,
    destination_address,
    source_address,
    status_code,
    status_text,
    validity_period,
)
from mmsgate.carriers.smpp.receiving import Receiver
from mmsgate.carriers.smpp.settings import SmppConnection
from mmsgate.core.records import normalise_id
from mmsgate.errors import CarrierBusy, CarrierError, CarrierRejected

log = logging.getLogger("mmsgate.smpp")

_THROTTLE_CAP = 30.0
_UNBIND_WAIT = 2.0
_SETTLE_WAIT = 2.0
_STEADY_SECONDS = 5.0
"""A bind that lasted this long resets the reconnect back-off."""


@dataclass(frozen=True, slots=True)
class SmppTiming:
    """How a connector paces itself (not stored with a connection: its defaults suit SMSCs)."""

    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    throttle_backoff: float = 1.0
    """First pause after ESME_RTHROTTLED / ESME_RMSGQFUL; doubles on each further one, up to 30 s."""
    throttle_budget: float = 60.0
    """Seconds a submit keeps resending a throttled segment before it gives up (CarrierBusy)."""


class _BindRefused(Exception):
    def __init__(self, kind: BindKind, status: int) -> None:
        super().__init__(f"{kind} bind refused: {status_text(status)}")
        self.status = status


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
    """One SMPP connection named ``name``; ``settings`` were checked when they were built."""

    def __init__(
        self,
        name: str,
        settings: SmppConnection,
        *,
        timing: SmppTiming | None = None,
        limiter: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.timing = timing or SmppTiming()
        self._limiter = limiter
        self._links: list[Link] = []
        self._bound = asyncio.Event()
        self._closing = asyncio.Event()
        self._window = asyncio.Semaphore(settings.window)
        self._hold_until = 0.0
        self._reference = random.randrange(256)
        self._runner: asyncio.Task[None] | None = None
        self._first_bind: asyncio.Future[None] | None = None
        self._receiver = Receiver(name)

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
        self._receiver.sink = sink
        self._first_bind = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._supervising(), name=f"smpp-{self.name}")
        try:
            await asyncio.shield(self._first_bind)
        except asyncio.CancelledError:
            if not self._first_bind.done():  # cancelled before the first bind: stop trying
                self._runner.cancel()
            raise

    async def _bind_all(self) -> list[Link]:
        kinds: tuple[BindKind, ...] = (
            ("transceiver",) if self.settings.bind == "transceiver" else ("transmitter", "receiver")
        )
        links: list[Link] = []
        try:
            for kind in kinds:
                links.append(await self._bind(kind))
        except BaseException:
            for link in links:
                link.close("bind of its partner failed")
            raise
        return links

    async def _bind(self, kind: BindKind) -> Link:
        s, timing = self.settings, self.timing
        reader, writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), timing.response_timeout)
        link = Link(kind, reader, writer, self._receiver.on_deliver)
        pdu_class = {"transceiver": BindTransceiver, "transmitter": BindTransmitter, "receiver": BindReceiver}[kind]

        def build(sequence: int) -> bytes:
            bind = pdu_class(
                sequence_num=sequence, system_id=s.system_id, password=s.password, system_type=s.system_type
            )
            return bytes(bind.pdu())

        try:
            status, _ = await link.request(build, timing.response_timeout)
        except BaseException:
            link.close("bind did not complete")
            raise
        if status not in (ROK, RALYBND):
            link.close("bind refused")
            raise _BindRefused(kind, status)
        link.bound_at = time.monotonic()
        link.keep_alive(timing.enquire_link_interval, timing.response_timeout)
        return link

    async def _supervising(self) -> None:
        """Bind, watch the links, re-bind with back-off when one goes down, until closed."""
        s, timing = self.settings, self.timing
        delay = timing.reconnect_min
        while not self._closing.is_set():
            try:
                links = await self._bind_all()
            except _BindRefused as exc:
                if self._first_bind is not None and not self._first_bind.done():
                    self._first_bind.set_exception(
                        CarrierError(
                            status_code(exc.status),
                            f"bind refused: {status_text(exc.status)} from {s.host}:{s.port} "
                            f"for system_id {s.system_id!r} (SMPP connection {self.name})",
                            retryable=False,
                        )
                    )
                    log.error("SMPP %s: bind refused: %s; not retrying", self.name, status_text(exc.status))
                    return
                log.error("SMPP %s: bind refused: %s; retrying in %.3g s", self.name, exc, delay)
            except (OSError, TimeoutError, NotSent, Lost) as exc:
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
                    delay = timing.reconnect_min
                log.warning("SMPP %s: connection lost (%s); reconnecting in %.3g s", self.name, reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, timing.reconnect_max)

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
        source = source_address(sms.sender)
        destination = destination_address(sms.to)
        if not sms.text:
            raise CarrierRejected(status_code(RINVMSGLEN), "ESME_RINVMSGLEN: the SMS text is empty (checked here)")
        try:
            segments = encode_sms(sms.text, reference=self._next_reference())
        except ValueError as exc:
            raise CarrierRejected(status_code(RINVMSGLEN), f"ESME_RINVMSGLEN: {exc} (checked here)") from exc
        validity = validity_period(sms.expires_at)
        throttle = _Throttle(self.timing.throttle_backoff, self.timing.throttle_budget)
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

    async def _ready(self, taken: int, what: str) -> Link:
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
                await asyncio.wait_for(self._bound.wait(), self.timing.response_timeout)
            except TimeoutError:
                raise self._not_taken(
                    taken, "not-bound", f"SMPP connection {self.name} was not re-bound in time for {what}"
                ) from None

    async def _submit_segment(self, build: Callable[[int], bytes], what: str, taken: int, throttle: _Throttle) -> str:
        timeout = self.timing.response_timeout
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
                except NotSent:
                    continue  # the link went down just now: _ready decides
                except Lost as exc:
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
                        status_code(status),
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
                    await asyncio.wait_for(self._closing.wait(), self.timing.throttle_backoff)
                continue
            if status in RETRY_ONCE or status in BUSY:
                raise self._not_taken(taken, status_code(status), f"{name}: the SMSC did not take {what}")
            if taken == 0:
                raise CarrierRejected(status_code(status), f"{name}: the SMSC refused {what}")
            raise CarrierError(
                status_code(status),
                f"{name}: the SMSC refused {what} after taking {taken} segment(s) before it",
                definite=False,
            )

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
                with contextlib.suppress(NotSent, Lost, TimeoutError):
                    await link.request(lambda seq: bytes(Unbind(sequence_num=seq).pdu()), _UNBIND_WAIT)
            link.close("connector closed")
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._receiver.tasks):
            task.cancel()
        await asyncio.gather(*self._receiver.tasks, *(link.wait_closed() for link in links), return_exceptions=True)
        self._bound.clear()
        log.info("SMPP %s: closed", self.name)

"""An MM7 connection to a carrier's MMSC (``mmsgate mm7 add``): the Carrier that submits over it.

``submit`` packs the composed MMS into a SubmitReq (:mod:`mmsgate.carriers.mm7.build`), posts it with
HTTP Basic auth and reads the answer: a SubmitRsp's MessageID becomes the carrier message id; a status
or fault says whether trying again can help (3100 "throughput exceeded" backs off as throttling, 2xxx
refuses the message for good). An answer that never came is recorded as such: the MMSC may have the
message, and it is not submitted again. MM7 has no way to ask an MMSC whether it has a message, so
``reconcile`` cannot tell either.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from mmsgate.carriers.base import Carrier, CarrierSink, SubmitResult
from mmsgate.carriers.mm7.build import build_submit_req
from mmsgate.carriers.mm7.parse import parse_submit_response
from mmsgate.carriers.mm7.records import Mm7Fault, Mm7ParseError
from mmsgate.carriers.mm7.settings import Mm7Connection
from mmsgate.carriers.mm7.status import Outcome, classify
from mmsgate.core.mms import Mms
from mmsgate.core.roles import Blobs
from mmsgate.errors import CarrierBusy, CarrierError, CarrierRejected

log = logging.getLogger("mmsgate.mm7")

MAX_ANSWER_BYTES = 1024 * 1024
"""The largest answer read from an MMSC (a SubmitRsp is a few hundred bytes)."""


def is_short_code(number: str) -> bool:
    """Short codes are up to 8 digits; longer numbers are international numbers."""
    return len(number) <= 8


class Mm7Carrier(Carrier):
    """Submits over the MM7 connection ``name``."""

    def __init__(
        self,
        name: str,
        settings: Mm7Connection,
        blobs: Blobs,
        *,
        limiter: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.blobs = blobs
        self.limiter = limiter
        self._session: aiohttp.ClientSession | None = None

    async def start(self, sink: CarrierSink) -> None:
        """Reports and inbound MMS come through the VASP endpoint (``POST /mm7/NAME``), not from here."""

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {}
            if self.settings.username is not None and self.settings.password is not None:
                pair = f"{self.settings.username}:{self.settings.password}".encode()
                headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout, connect=min(10.0, self.settings.timeout)),
                connector=aiohttp.TCPConnector(limit=64),
            )
        return self._session

    async def submit(self, mms: Mms) -> SubmitResult:
        s = self.settings
        if s.max_size and mms.size > s.max_size:
            raise CarrierRejected(
                "size", f"the MMS is {mms.size} bytes; connection {self.name} takes at most {s.max_size}"
            )
        parts = [(p, p.data if p.data is not None else await self._bytes(p.sha256 or "")) for p in mms.parts]
        body, content_type = build_submit_req(
            transaction_id=mms.tracking_id,
            version=s.version,
            vasp_id=s.vasp_id,
            vas_id=s.vas_id,
            sender=mms.sender,
            sender_is_short_code=is_short_code(mms.sender),
            recipient=mms.to,
            subject=mms.subject,
            expiry=mms.expires_at,
            smil=mms.smil,
            parts=parts,
        )
        if self.limiter is not None:
            await self.limiter()
        headers = {"Content-Type": content_type, "SOAPAction": f'"{s.soap_action}"'}
        try:
            async with self._client().post(s.url, data=body, headers=headers) as answer:
                status, answer_type = answer.status, answer.headers.get("Content-Type")
                data = await answer.content.read(MAX_ANSWER_BYTES)
        except aiohttp.ClientConnectorError as exc:  # never connected: certainly not sent
            raise CarrierBusy("unreachable", f"cannot reach {s.url}: {exc}") from exc
        except TimeoutError as exc:
            raise CarrierError(
                "timeout",
                f"no answer from {s.url} within {s.timeout:g} s; the MMSC may have the message, so it is not "
                "submitted again",
                definite=False,
            ) from exc
        except aiohttp.ClientError as exc:
            raise CarrierError(
                "connection-lost",
                f"{s.url}: {exc}; the MMSC may have the message, so it is not submitted again",
                definite=False,
            ) from exc
        if status in (401, 403):
            raise CarrierError(
                str(status), f"{s.url} refused the credentials of connection {self.name} (HTTP {status})"
            )
        try:
            parsed = parse_submit_response(data, answer_type)
        except Mm7ParseError as exc:
            if status >= 500 or status == 429:
                raise CarrierError(str(status), f"{s.url} answered HTTP {status}: {exc}", retryable=True) from exc
            raise CarrierError(
                "bad-answer", f"{s.url} answered HTTP {status} with no MM7 answer: {exc}", definite=False
            ) from exc
        result = parsed.status
        if result is None:  # a fault without an MM7 status
            assert isinstance(parsed, Mm7Fault)
            raise CarrierError("fault", f"SOAP fault {parsed.fault_code}: {parsed.fault_string}", retryable=True)
        detail = f"MM7 {result.code} {result.text}" + (f" ({result.details})" if result.details else "")
        outcome = classify(result.code)
        if outcome is Outcome.SUCCESS and not isinstance(parsed, Mm7Fault) and parsed.message_id:
            return SubmitResult(parsed.message_id)
        if outcome is Outcome.SUCCESS:
            raise CarrierError("no-message-id", f"{detail} without a MessageID", definite=False)
        if outcome is Outcome.THROTTLED:
            raise CarrierBusy(str(result.code), detail)
        if outcome is Outcome.RETRYABLE:
            raise CarrierError(str(result.code), detail, retryable=True)
        raise CarrierRejected(str(result.code), detail)

    async def _bytes(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.blobs.get, sha256)

    async def reconcile(self, mms: Mms) -> SubmitResult | None:
        raise CarrierError(
            "unknown-outcome",
            f"the gateway stopped while submitting to {self.settings.url}; MM7 cannot ask whether the MMSC has "
            "the message, so it is not submitted again",
            definite=False,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

"""The SMPP connector against an independent SMSC (tests/peers/smsc-sim.js on the npm ``smpp`` package):
binds, encodings and concatenation as the SMSC reads them, throttling, receipts, MO, reconnecting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mmsgate.carriers.base import InboundSms, Sms
from mmsgate.carriers.smpp.connector import SmppConnector, SmppTiming
from mmsgate.carriers.smpp.settings import SmppConnection
from mmsgate.core.records import SmsReceipt, SmsStatus, candidate_ids, normalise_id
from mmsgate.errors import CarrierBusy, CarrierError, CarrierRejected
from tests.smsc import Smsc
from tests.waiting import eventually

TO = "15551230000"
SENDER = "MMSGate"
SYSTEM_ID = "mmsgate"
PASSWORD = "s3cret"


@dataclass
class Recorder:
    """An SmsSink that keeps what it gets; ``fail_receipts`` receipts raise before one is kept."""

    receipts: list[SmsReceipt] = field(default_factory=list)
    inbound: list[InboundSms] = field(default_factory=list)
    refused: list[SmsReceipt] = field(default_factory=list)
    fail_receipts: int = 0

    async def sms_receipt(self, receipt: SmsReceipt) -> None:
        if self.fail_receipts > 0:
            self.fail_receipts -= 1
            self.refused.append(receipt)
            raise RuntimeError("the store is down")
        self.receipts.append(receipt)

    async def sms_inbound(self, message: InboundSms) -> None:
        self.inbound.append(message)

    async def receipt_for(self, message_id: str, within: float = 10.0) -> SmsReceipt:
        async def probe() -> SmsReceipt | None:
            return next((r for r in self.receipts if normalise_id(message_id) in candidate_ids(r.message_id)), None)

        return await eventually(probe, within, f"the receipt for {message_id}")


StartSmsc = Callable[..., Awaitable[Smsc]]
Connect = Callable[..., Awaitable[SmppConnector]]


@pytest.fixture
async def smscs() -> AsyncIterator[StartSmsc]:
    """Start SMSC peers (env settings as keyword arguments); each is killed at the end of the test."""
    started: list[Smsc] = []

    async def start(**env: str) -> Smsc:
        smsc = Smsc({"SMSC_SYSTEM_ID": SYSTEM_ID, "SMSC_PASSWORD": PASSWORD, **env})
        started.append(smsc)
        return await smsc.start()

    yield start
    for smsc in started:
        await smsc.stop()


def make_connector(smsc: Smsc, limiter: Callable[[], Awaitable[None]] | None = None, **overrides: Any) -> SmppConnector:
    """A connector to ``smsc``, its settings and timing overridden by name."""
    values: dict[str, Any] = {
        "name": "smsc-test",
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": SYSTEM_ID,
        "password": PASSWORD,
        "response_timeout": 5.0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.5,
        "throttle_backoff": 0.1,
        **overrides,
    }
    name = values.pop("name")
    timing = {k: values.pop(k) for k in list(values) if k in SmppTiming.__dataclass_fields__}
    return SmppConnector(name, SmppConnection(**values), timing=SmppTiming(**timing), limiter=limiter)


@pytest.fixture
async def connect(smscs: StartSmsc) -> AsyncIterator[Connect]:
    """Start connectors bound to a peer; each is closed at the end of the test (before the peers stop)."""
    started: list[SmppConnector] = []

    async def start(
        smsc: Smsc, sink: Recorder, limiter: Callable[[], Awaitable[None]] | None = None, **overrides: Any
    ) -> SmppConnector:
        made = make_connector(smsc, limiter, **overrides)
        started.append(made)
        await asyncio.wait_for(made.start(sink), 10)
        return made

    yield start
    for connector in started:
        await connector.aclose()


async def until(condition: Callable[[], object], what: str, within: float = 10.0) -> None:
    async def probe() -> bool | None:
        return True if condition() else None

    await eventually(probe, within, what)


def sms(text: str, *, sender: str = SENDER, to: str = TO, expires_at: datetime | None = None) -> Sms:
    return Sms(f"t-{abs(hash(text)) % 10**8}", sender, to, text, expires_at)


async def test_bind_refused_with_a_wrong_password(smscs: StartSmsc) -> None:
    smsc = await smscs()
    wrong = make_connector(smsc, password="wrong")
    with pytest.raises(CarrierError) as caught:
        await asyncio.wait_for(wrong.start(Recorder()), 10)
    error = caught.value
    assert not isinstance(error, CarrierBusy)
    assert "bind refused" in str(error) and "ESME_RINVPASWD" in str(error) and "0x0000000E" in str(error)
    assert not error.retryable
    assert [e["status"] for e in await smsc.gather("bind", 1)] == [0x0E]
    with pytest.raises(CarrierBusy):
        await wrong.submit(sms("not bound"))
    await wrong.aclose()
    await smsc.send({"cmd": "drop"})  # a marker: every event before it is in
    await smsc.gather("drop", 1)
    assert len(smsc.of("bind")) == 1  # refused once, not retried


async def test_one_part_gsm7_with_each_kind_of_sender(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    connector = await connect(smsc, Recorder())
    text = "Hello from mmsgate: {ok} @ £5 ~ € ^ [x] | \\ ñ"
    expires = datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    senders = (("MMSGate", 5, 0), ("15557654321", 1, 1), ("+15557654321", 1, 1), ("28444", 3, 0))
    for count, (sender, ton, npi) in enumerate(senders, start=1):
        result = await connector.submit(sms(text, sender=sender, expires_at=expires))
        seen = (await smsc.gather("submit", count, status=0, text=text))[-1]
        assert (seen["source"], seen["source_ton"], seen["source_npi"]) == (sender.lstrip("+"), ton, npi)
        assert result.message_ids == (normalise_id(seen["message_id"]),)
    assert len(smsc.accepted(text)) == 4
    seen = smsc.accepted(text)[0]
    assert seen["text"] == text
    assert (seen["data_coding"], seen["esm_class"], seen["registered_delivery"]) == (0, 0, 1)
    assert (seen["to"], seen["dest_ton"], seen["dest_npi"]) == (TO, 1, 1)
    assert seen["validity_period"] == "310203040506000+"
    await connector.submit(sms("no expiry"))
    (seen,) = await smsc.gather("submit", 1, text="no expiry")
    assert seen["validity_period"] == ""


async def test_concatenated_gsm7_keeps_an_escape_pair_whole(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    connector = await connect(smsc, Recorder())
    # 152 septets, then € (ESC e) would end at septet 154: it must open the second segment
    text = "a" * 152 + "€uro and {braces}" + "b" * 140 + "~end"
    result = await connector.submit(sms(text))
    complete = await smsc.wait_for(lambda e: e["event"] == "complete", what="the reassembled text")
    assert complete["text"] == text
    parts = smsc.accepted()
    assert [(p["total"], p["seq"]) for p in parts] == [(3, 1), (3, 2), (3, 3)]
    assert len({p["ref"] for p in parts}) == 1
    assert parts[0]["text"] == "a" * 152 and parts[1]["text"].startswith("€uro")
    assert all(p["data_coding"] == 0 and p["esm_class"] == 0x40 for p in parts)
    assert result.message_ids == tuple(normalise_id(p["message_id"]) for p in parts)
    # the next SMS gets another reference
    await connector.submit(sms("c" * 200))
    assert (await smsc.gather("submit", 5, status=0))[-1]["ref"] != parts[0]["ref"]


async def test_ucs2_with_emoji_one_part_and_concatenated(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    connector = await connect(smsc, Recorder())
    short = "Grüße 👋 — ok ✓"
    await connector.submit(sms(short))
    (seen,) = await smsc.gather("submit", 1, status=0)
    assert (seen["text"], seen["data_coding"], seen["esm_class"]) == (short, 8, 0)
    long = "Emoji 😀 at every turn, ünïcødé too. " * 6 + "👍"
    result = await connector.submit(sms(long))
    complete = await smsc.wait_for(lambda e: e["event"] == "complete", what="the reassembled UCS-2 text")
    assert complete["text"] == long
    parts = smsc.accepted()[1:]
    assert len(parts) == len(result.message_ids) == complete["total"] > 1
    assert all(p["data_coding"] == 8 and "\ufffd" not in p["text"] for p in parts)


async def test_throttled_segments_are_resent_once_after_a_back_off(
    smscs: StartSmsc, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmsgate.smpp")
    smsc = await smscs(THROTTLE_EVERY="3")
    pdus = 0

    async def limiter() -> None:
        nonlocal pdus
        pdus += 1

    connector = await connect(smsc, Recorder(), limiter=limiter, throttle_backoff=0.1)
    texts = [f"throttled message {i}" for i in range(6)]
    results = await asyncio.gather(*(connector.submit(sms(t)) for t in texts))
    assert all(len(r.message_ids) == 1 for r in results)
    await smsc.gather("submit", pdus)
    for text, result in zip(texts, results, strict=True):
        (taken,) = smsc.accepted(text)  # delivered exactly once
        assert result.message_ids == (normalise_id(taken["message_id"]),)
    throttled = smsc.of("submit", status=0x58)
    assert len(throttled) >= 2
    for event in throttled:  # the same segment came back, after the back-off
        (resent,) = smsc.accepted(event["text"])
        assert resent["t"] - event["t"] >= 90
    assert pdus == len(smsc.of("submit"))  # the limiter was awaited before every submit_sm
    assert any("ESME_RTHROTTLED" in r.getMessage() for r in caplog.records)


async def test_throttled_beyond_the_budget_is_busy(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs(THROTTLE_EVERY="1")
    connector = await connect(smsc, Recorder(), throttle_backoff=0.05, throttle_budget=0.3)
    with pytest.raises(CarrierBusy) as caught:
        await connector.submit(sms("never taken"))
    assert "ESME_RTHROTTLED" in str(caught.value) and caught.value.definite and caught.value.retryable
    assert len(await smsc.gather("submit", 2, status=0x58)) >= 2 and not smsc.accepted()


@pytest.mark.parametrize(
    ("stat", "tlvs", "status"),
    [("DELIVRD", "1", SmsStatus.DELIVERED), ("UNDELIV", "0", SmsStatus.FAILED)],
    ids=["delivered-tlvs", "undeliv-text-only"],
)
async def test_receipts_reach_the_sink_with_the_submitted_ids(
    smscs: StartSmsc, connect: Connect, stat: str, tlvs: str, status: SmsStatus
) -> None:
    smsc = await smscs(RECEIPT_STATUS=stat, RECEIPT_TLVS=tlvs)
    sink = Recorder()
    connector = await connect(smsc, sink)
    result = await connector.submit(sms("receipt please"))
    (message_id,) = result.message_ids
    receipt = await sink.receipt_for(message_id)
    assert receipt.connector == "smsc-test"
    assert normalise_id(receipt.message_id) == message_id
    assert receipt.status is status
    assert receipt.details == f"stat:{stat} err:{'000' if stat == 'DELIVRD' else '001'}"
    # a later receipt for the same id (the SMSC's own command)
    (taken,) = await smsc.gather("submit", 1, status=0)
    await smsc.send({"cmd": "receipt", "id": taken["message_id"], "stat": "EXPIRED"})
    await until(lambda: len(sink.receipts) == 2, "the second receipt")
    assert sink.receipts[1].status is SmsStatus.EXPIRED


async def test_mixed_id_formats_match_through_candidate_ids(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs(ID_FORMAT="mixed")
    sink = Recorder()
    connector = await connect(smsc, sink)
    (message_id,) = (await connector.submit(sms("mixed ids"))).message_ids
    receipt = await sink.receipt_for(message_id)
    assert normalise_id(receipt.message_id) != message_id  # decimal here, hex in submit_sm_resp
    assert receipt.message_id.isdigit()
    assert message_id in candidate_ids(receipt.message_id)


async def test_a_dropped_connection_is_rebound_without_duplicates(
    smscs: StartSmsc, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmsgate.smpp")
    smsc = await smscs()
    connector = await connect(smsc, Recorder())
    await connector.submit(sms("before the drop"))
    await smsc.send({"cmd": "drop"})
    await smsc.wait_for(lambda e: e["event"] == "drop", what="the drop")
    await smsc.gather("bind", 2, ok=True)
    await until(lambda: connector.is_bound, "the connector to be bound again")
    await connector.submit(sms("after the drop"))
    await smsc.gather("submit", 1, text="after the drop")
    assert len(smsc.accepted("before the drop")) == 1
    assert len(smsc.accepted("after the drop")) == 1
    assert any("connection lost" in r.getMessage() for r in caplog.records)


async def test_not_bound_is_busy_and_closing_unbinds(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    other = await smscs()
    connector = await connect(smsc, Recorder())
    await smsc.stop()
    await until(lambda: not connector.is_bound, "the connector to notice")
    with pytest.raises(CarrierBusy) as caught:
        await connector.submit(sms("while down"))
    assert caught.value.definite and caught.value.retryable
    await connector.aclose()
    # a connector that closes while bound unbinds first
    second = await connect(other, Recorder())
    await second.aclose()
    await other.wait_for(lambda e: e["event"] == "unbind", what="the unbind")
    with pytest.raises(CarrierBusy):
        await second.submit(sms("after close"))


async def test_a_permanent_status_is_rejected_and_a_fault_retried_once(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs(REJECT_TO="15550009999:11,15550008888:8")
    connector = await connect(smsc, Recorder(), throttle_backoff=0.01)
    with pytest.raises(CarrierRejected) as caught:
        await connector.submit(sms("to nowhere", to="15550009999"))
    assert "ESME_RINVDSTADR" in str(caught.value) and caught.value.status == "0x0000000B"
    assert caught.value.definite and not caught.value.retryable
    with pytest.raises(CarrierBusy) as busy:
        await connector.submit(sms("SMSC fault", to="15550008888"))
    assert "ESME_RSYSERR" in str(busy.value) and busy.value.status == "0x00000008"
    assert len(await smsc.gather("submit", 2, text="SMSC fault")) == 2  # one retry, no more
    await connector.submit(sms("still fine"))  # the bind is unharmed


async def test_a_segment_failing_after_others_were_taken_is_uncertain(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs(THROTTLE_EVERY="2")
    connector = await connect(smsc, Recorder(), throttle_budget=0.0)
    with pytest.raises(CarrierError) as caught:
        await connector.submit(sms("two parts " * 20))
    assert not isinstance(caught.value, CarrierBusy | CarrierRejected)
    assert not caught.value.definite and "1 segment(s) before it were taken" in str(caught.value)
    assert len(await smsc.gather("submit", 1, status=0)) == 1


async def test_mo_single_and_concatenated(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    sink = Recorder()
    await connect(smsc, sink)
    sent = [
        ("15550001111", "28444", "Hi there {short} €"),
        ("15550002222", "28444", "long GSM: " + "x" * 143 + "€" + "y" * 150 + " [end]"),
        ("15550003333", "15551230000", "UCS-2 😀 reply, " * 8 + "✓"),
        ("15550004444", "28444", "SAR TLVs instead of a UDH: " + "z" * 200),
    ]
    for sender, to, text in sent:
        await smsc.send({"cmd": "mo", "from": sender, "to": to, "text": text, "sar": sender == "15550004444"})
    await until(lambda: len(sink.inbound) == len(sent), "every MO message")
    assert {(m.sender, m.recipient, m.text) for m in sink.inbound} == set(sent)
    assert all(m.connector == "smsc-test" for m in sink.inbound)

    def every_segment_answered() -> bool:
        answered = smsc.of("mo")
        totals = {e["from"]: e["total"] for e in answered}
        return set(totals) == {sender for sender, _, _ in sent} and len(answered) == sum(totals.values())

    await until(every_segment_answered, "the answers to every MO segment")
    assert all(e["status"] == 0 for e in smsc.of("mo"))


async def test_a_failing_sink_gets_the_receipt_again(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    sink = Recorder(fail_receipts=1)
    connector = await connect(smsc, sink)
    (message_id,) = (await connector.submit(sms("store it twice"))).message_ids
    receipt = await sink.receipt_for(message_id)
    assert receipt.status is SmsStatus.DELIVERED
    await smsc.gather("receipt", 2)
    answers = [(e["status"], e["attempt"]) for e in smsc.of("receipt")]
    assert answers == [(0x64, 0), (0, 1)]  # ESME_RX_T_APPN, then the SMSC's resend is taken
    assert [r.message_id for r in sink.refused] == [receipt.message_id]
    assert len(sink.receipts) == 1


async def test_enquire_link_both_ways(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    await connect(smsc, Recorder(), enquire_link_interval=0.1)
    await smsc.wait_for(lambda e: e["event"] == "enquire_link" and len(smsc.of("enquire_link")) >= 2, what="pings")
    await smsc.send({"cmd": "enquire_link"})
    answer = await smsc.wait_for(lambda e: e["event"] == "enquire_link_resp", what="the connector's answer")
    assert answer["status"] == 0


async def test_a_transmitter_and_receiver_pair(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    sink = Recorder()
    connector = await connect(smsc, sink, bind="pair")
    binds = await smsc.gather("bind", 2, ok=True)
    assert sorted(e["mode"] for e in binds) == ["receiver", "transmitter"]
    (message_id,) = (await connector.submit(sms("over the pair"))).message_ids
    await smsc.gather("submit", 1, status=0, text="over the pair")
    await sink.receipt_for(message_id)
    await smsc.send({"cmd": "mo", "from": "15550004444", "to": "28444", "text": "pair MO"})
    await until(lambda: sink.inbound, "the MO over the receiver bind")
    assert sink.inbound[0].text == "pair MO"


async def test_validity_is_sent_in_utc(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs()
    connector = await connect(smsc, Recorder())
    local = datetime(2031, 2, 3, 6, 5, 6, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    await connector.submit(sms("utc validity", expires_at=local))
    (seen,) = await smsc.gather("submit", 1, text="utc validity")
    assert seen["validity_period"] == "310203060506000+"


async def test_the_window_bounds_outstanding_submits(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs(RESP_DELAY_MS="40")
    connector = await connect(smsc, Recorder(), window=3)
    results = await asyncio.gather(*(connector.submit(sms(f"windowed {i}")) for i in range(10)))
    assert len({r.message_ids for r in results}) == 10
    held = await smsc.gather("submit_held", 10)
    assert max(e["inflight"] for e in held) == 3


async def test_no_answer_in_time_is_uncertain(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs(RESP_DELAY_MS="1500")
    connector = await connect(smsc, Recorder(), response_timeout=0.3)
    with pytest.raises(CarrierError) as caught:
        await connector.submit(sms("slow SMSC"))
    assert not isinstance(caught.value, CarrierBusy | CarrierRejected)
    assert not caught.value.definite and not caught.value.retryable
    assert "no submit_sm_resp" in str(caught.value)
    await smsc.gather("submit", 1, status=0, text="slow SMSC")  # it did take it, later


async def test_a_drop_after_sending_is_uncertain(smscs: StartSmsc, connect: Connect) -> None:
    smsc = await smscs(RESP_DELAY_MS="3000")
    connector = await connect(smsc, Recorder())
    pending = asyncio.create_task(connector.submit(sms("sent, then dropped")))
    await smsc.gather("submit_held", 1)
    await smsc.send({"cmd": "drop"})
    with pytest.raises(CarrierError) as caught:
        await asyncio.wait_for(pending, 10)
    assert not isinstance(caught.value, CarrierBusy | CarrierRejected)
    assert not caught.value.definite and "dropped" in str(caught.value)

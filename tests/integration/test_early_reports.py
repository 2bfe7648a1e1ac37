"""Delivery reports that overtake the record of the submit they report on, for each carrier kind: the sandbox
carrier, MM7 (the MMSC peer, tests/peers/mmsc-sim.js) and a fallback SMS's receipt over SMPP (the SMSC peer,
tests/peers/smsc-sim.js), on SQLite and PostgreSQL.

The race is made to happen every time: the worker's record of the submit (the store's ``lifecycle.advance``
to submitted, or ``lifecycle.sms_submitted``) waits until the carrier's report has been handled by the
gateway, and only then is written. The message must still reach its delivered state with its postbacks.
The report is applied right after the submit's record by the worker that wrote it (here with the periodic
sweep made too slow to help), or, when the worker never got to that check (its record committed but the
acknowledgement lost, as when a connection drops at the commit), by the sweep of kept reports. A report
whose submit is never recorded is dropped at its message's expiry, and the log says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mmsgate import runtime
from mmsgate.core.codes import JobKind, MessageState
from mmsgate.core.model import Step, iso, utcnow
from mmsgate.core.records import Behaviour, Handset, KeptReport, ReportKind
from mmsgate.errors import StoreUnavailable
from mmsgate.store import Store
from mmsgate.web.console.auth import set_password
from tests.acceptance.conftest import mmsgate_env
from tests.integration.test_console import PASSWORD, logged_in, text_of
from tests.integration.test_delivery import Gateway, gateway_settings, running_gateway
from tests.integration.test_fallback_smpp import PASSWORD as SMSC_PASSWORD
from tests.integration.test_fallback_smpp import SYSTEM_ID, bound, gateway_with_smsc
from tests.integration.test_mm7 import mm7_gateway
from tests.serving import served
from tests.smsc import Smsc
from tests.waiting import eventually

S = MessageState
SWEEP_OFF = 3600.0
"""A sweep interval no test outlasts: only the check right after the submit's record can apply a report."""
SWEEP_FAST = 0.2
TEXT = [{"message-text": "Your parcel is here"}]


class HeldRecord:
    """Holds the record of a submit until the test releases it; with ``lost_ack`` the record is committed and
    then reported failed to the worker, which therefore never checks for a report that came before."""

    def __init__(self, *, lost_ack: bool = False) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.lost_ack = lost_ack

    async def hold(self, record: Callable[[], Awaitable[bool]]) -> bool:
        self.reached.set()
        await asyncio.wait_for(self.release.wait(), 60)
        applied = await record()
        if applied and self.lost_ack:
            raise StoreUnavailable("connection lost after the commit (test)")
        return applied

    async def until_reached(self) -> None:
        await asyncio.wait_for(self.reached.wait(), 30)


def hold_mms_submit(store: Store, monkeypatch: pytest.MonkeyPatch, held: HeldRecord) -> None:
    advance = store.lifecycle.advance

    async def held_advance(step: Step) -> bool:
        if step.target is S.SUBMITTED:
            return await held.hold(lambda: advance(step))
        return await advance(step)

    monkeypatch.setattr(store.lifecycle, "advance", held_advance)


def hold_sms_submit(store: Store, monkeypatch: pytest.MonkeyPatch, held: HeldRecord) -> None:
    sms_submitted = store.lifecycle.sms_submitted

    async def held_sms_submitted(step: Step, connector: str, message_ids: object) -> bool:
        return await held.hold(lambda: sms_submitted(step, connector, message_ids))  # type: ignore[arg-type]

    monkeypatch.setattr(store.lifecycle, "sms_submitted", held_sms_submitted)


async def report_jobs_done(store: Store, kind: JobKind) -> bool | None:
    """True once the carrier's report has come and its job is over (it kept, applied or dropped it)."""
    rows = await store.db.read("SELECT state FROM jobs WHERE kind = ?", (kind.value,))
    return True if rows and all(r[0] == "done" for r in rows) else None


async def receipt_recorded(store: Store) -> bool | None:
    return True if await store.db.read("SELECT smsc_id FROM sms_receipts") else None


@contextlib.asynccontextmanager
async def sweeping_every(monkeypatch: pytest.MonkeyPatch, seconds: float) -> AsyncIterator[None]:
    monkeypatch.setattr(runtime, "KEPT_REPORTS_INTERVAL", seconds)
    yield


# the sandbox ------------------------------------------------------------------------------------------------


class SendWait:
    """``mmsgate send --wait`` as a user runs it, its output read line by line as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, url: str, api_key: str, service_id: str, sender: str, to: str) -> SendWait:
        env = mmsgate_env(MMSGATE_URL=url, MMSGATE_API_KEY=api_key, MMSGATE_SERVICE_ID=service_id, MMSGATE_FROM=sender)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mmsgate",
            "send",
            "--to",
            to,
            "--text",
            "Your parcel is here",
            "--wait",
            "--timeout",
            "60",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line_with(self, text: str, within: float = 30.0) -> str:
        assert self.proc.stdout is not None
        found = next((line for line in self.lines if text in line), None)
        while found is None:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), within)
            assert raw, f"mmsgate send ended without printing {text!r}: {self.lines}"
            self.lines.append(raw.decode().rstrip("\n"))
            found = text if text in self.lines[-1] else None
        return next(line for line in self.lines if text in line)

    async def finish(self) -> tuple[int, list[str], str]:
        out, err = await asyncio.wait_for(self.proc.communicate(), 60)
        self.lines.extend(out.decode().splitlines())
        assert self.proc.returncode is not None
        return self.proc.returncode, self.lines, err.decode()


async def test_a_sandbox_report_before_the_submits_record_is_kept_shown_and_applied(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldRecord()
    hold_mms_submit(store, monkeypatch, held)
    await set_password(store.console, PASSWORD)
    async with (
        sweeping_every(monkeypatch, SWEEP_OFF),
        running_gateway(store, gateway_settings(tmp_path, backend, request)) as gateway,
        served(gateway.app) as url,
    ):
        caller, secret = await gateway.account()
        cli = await SendWait.start(url, caller.api_key, caller.service_id, caller.sender, caller.to)
        tracking_id = (await cli.line_with("accepted: tracking-id ")).split()[-1]
        await held.until_reached()
        await eventually(lambda: report_jobs_done(store, JobKind.SANDBOX_REPORT), what="the handset's report")

        # the report is pending where users look: the status view, the console, and `mmsgate send --wait`
        view = (await gateway.http.get(f"/v1/messages/{tracking_id}", headers={"x-api-key": caller.api_key})).json()
        message = await store.messages.find_message(tracking_id)
        assert view["state"] == "submitting"
        pending = view["pending-report"]
        assert {k: pending[k] for k in ("kind", "carrier", "status", "status-details", "kept-until")} == {
            "kind": "mms",
            "carrier": "sandbox",
            "status": "delivered",
            "status-details": "Message Delivered",
            "kept-until": iso(message.expires_at),
        }
        http = await logged_in(gateway)
        page = text_of(await http.get(f"/console/messages/{tracking_id}"))
        assert "Pending report Delivery report from sandbox: delivered (Message Delivered)" in page
        line = await cli.line_with("pending delivery report")
        assert "from sandbox: delivered (Message Delivered)" in line

        held.release.set()
        _, delivered = await gateway.postbacks(tracking_id, ["N101", "N102"])
        assert delivered.signed_by(secret) and delivered.json["operator-id"] == "99999"
        code, lines, err = await cli.finish()
        assert code == 0, err
        codes = [ln.split()[1] for ln in lines if len(ln.split()) > 1 and ln.split()[1] in ("N101", "N102")]
        assert codes == ["N101", "N102"]
        assert (await store.messages.find_message(tracking_id)).state is S.DELIVERED
        view = (await gateway.http.get(f"/v1/messages/{tracking_id}", headers={"x-api-key": caller.api_key})).json()
        assert view["pending-report"] is None
        assert await store.db.read("SELECT kind FROM kept_reports") == []


async def test_a_sandbox_report_is_applied_by_the_sweep_when_the_worker_missed_it(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldRecord(lost_ack=True)
    hold_mms_submit(store, monkeypatch, held)
    async with (
        sweeping_every(monkeypatch, SWEEP_FAST),
        running_gateway(store, gateway_settings(tmp_path, backend, request)) as gateway,
    ):
        caller, _ = await gateway.account()
        tracking_id = await gateway.send(caller, slide=TEXT)
        await held.until_reached()
        await eventually(lambda: report_jobs_done(store, JobKind.SANDBOX_REPORT), what="the handset's report")
        held.release.set()
        await gateway.postbacks(tracking_id, ["N101", "N102"])
        assert (await store.messages.find_message(tracking_id)).state is S.DELIVERED
        # the deliver job that waited for the report ended with it
        rows = await store.db.read("SELECT state FROM jobs WHERE kind = ? AND ref = ?", ("deliver", tracking_id))
        assert rows == [("done",)]


# MM7 ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lost_ack", [False, True], ids=["record-then-check", "sweep"])
async def test_an_mm7_report_before_the_submits_record_ends_the_message_delivered(
    store: Store,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    lost_ack: bool,
) -> None:
    held = HeldRecord(lost_ack=lost_ack)
    hold_mms_submit(store, monkeypatch, held)
    async with (
        sweeping_every(monkeypatch, SWEEP_FAST if lost_ack else SWEEP_OFF),
        mm7_gateway(store, backend, tmp_path, request, {}) as mm7,
    ):
        gateway = mm7.gateway
        caller, secret = await gateway.account()
        tracking_id = await gateway.send(caller, client_reference="mm7-early", slide=TEXT)
        await held.until_reached()
        (report,) = await mm7.mmsc.gather("report_sent", 1)  # the MMSC reported, and the VASP answered it
        assert report["httpStatus"] == 200
        await eventually(lambda: report_jobs_done(store, JobKind.MM7_INBOUND), what="the report's job")
        held.release.set()
        _, delivered = await gateway.postbacks(tracking_id, ["N101", "N102"])
        assert delivered.signed_by(secret) and delivered.json["client-reference"] == "mm7-early"
        message = await store.messages.find_message(tracking_id)
        (submit,) = mm7.mmsc.of("submit")
        assert (message.state, message.carrier_message_id) == (S.DELIVERED, submit["messageId"])


# SMPP: a fallback SMS's receipt ------------------------------------------------------------------------------


@pytest.mark.parametrize("lost_ack", [False, True], ids=["record-then-check", "sweep"])
async def test_an_smpp_receipt_before_the_sms_record_ends_the_message_sms_delivered(
    store: Store,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    lost_ack: bool,
) -> None:
    held = HeldRecord(lost_ack=lost_ack)
    hold_sms_submit(store, monkeypatch, held)
    smsc = await Smsc({"SMSC_SYSTEM_ID": SYSTEM_ID, "SMSC_PASSWORD": SMSC_PASSWORD}).start()
    try:
        async with sweeping_every(monkeypatch, SWEEP_FAST if lost_ack else SWEEP_OFF):
            async for gateway in gateway_with_smsc(store, backend, tmp_path, request, smsc):
                await sms_race(gateway, smsc, held)
    finally:
        await smsc.stop()


async def sms_race(gateway: Gateway, smsc: Smsc, held: HeldRecord) -> None:
    caller, secret = await gateway.account()
    await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.NO_MMS))
    await bound(smsc)
    tracking_id = await gateway.send(caller, fallback_sms_text="Your parcel", slide=TEXT)
    await held.until_reached()
    await smsc.wait_for(lambda e: e.get("event") == "receipt", what="the SMSC's receipt")
    await eventually(lambda: receipt_recorded(gateway.store), what="the receipt to be recorded")
    view = (await gateway.http.get(f"/v1/messages/{tracking_id}", headers={"x-api-key": caller.api_key})).json()
    assert view["state"] == "sms-submitting"
    held.release.set()
    (delivered,) = await gateway.postbacks(tracking_id, ["N202"])
    assert delivered.signed_by(secret) and delivered.json["sent-as"] == "SMS"
    assert (await gateway.store.messages.find_message(tracking_id)).state is S.SMS_DELIVERED


# expiry ------------------------------------------------------------------------------------------------------


async def test_a_report_whose_submit_is_never_recorded_is_dropped_at_its_expiry_saying_so(
    store: Store,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = utcnow()
    stale = KeptReport(ReportKind.MMS, "carrier", "MMSC-gone", "delivered", "Retrieved", now - timedelta(days=3), now)
    live = dataclasses.replace(stale, carrier_message_id="MMSC-live", expires_at=now + timedelta(days=1))
    assert await store.reports.keep_report(stale) and await store.reports.keep_report(live)
    caplog.set_level(logging.WARNING, logger="mmsgate.delivery")
    async with (
        sweeping_every(monkeypatch, SWEEP_FAST),
        running_gateway(store, gateway_settings(tmp_path, backend, request)),
    ):

        async def dropped() -> list[str] | None:
            said = [r.getMessage() for r in caplog.records if "MMSC-gone" in r.getMessage()]
            return said or None

        (said,) = await eventually(dropped, what="the stale report to be dropped")
    assert f"kept since {iso(stale.received_at)} dropped: no submit was recorded for it by {iso(now)}" in said
    rows = await store.db.read("SELECT carrier_message_id FROM kept_reports")
    assert rows == [("MMSC-live",)]  # a report within its message's life stays

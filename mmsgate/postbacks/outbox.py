"""Postback delivery from the outbox: signed POSTs, at least once, retried with a fixed interval.

A postback is claimed under a lease, POSTed with its stored body and a fresh signature, and ended
delivered on any 2xx within the timeout; otherwise it is queued again ``retry_interval`` seconds
later, and after ``retries`` retries it ends failed. Every attempt is recorded (when it started, how
long it took, the HTTP status or the error) in the transaction that stores its outcome, and the row
keeps the URL of its latest attempt. One account's slow or broken receiver holds at most
``per_account`` deliveries at a time, so it never delays other accounts' postbacks. A message's
postbacks are sent in order (the store never hands out one while an earlier one is pending).

Where a postback goes and the key that signs it are read from the database in the statement that claims
it, with no cache between: an attempt goes to the URL configured when it is made (a receiver corrected
after a failure gets the next attempt), never to the one configured when the postback was queued. With no
URL any more the postback is dropped: it ends failed at once, with a warning and :data:`NO_URL` as its
error (``mmsgate postbacks retry`` sends it once a URL is set again).

A postback in flight is held under a short lease (the workers' lease, 15 s by default) that a heartbeat
renews every few seconds while it is sent and its outcome stored, as the job worker does for jobs: a dead
sender's postbacks are sent again a lease after its death, whatever the POST timeout. While the database
is away, the sender waits for it with a back-off, saying so, and goes on once it is back.

Postbacks go out through :class:`mmsgate.postbacks.http.PostbackClient` (pyreqwest), whose per-POST
cost on the event loop is a fraction of aiohttp's or httpx's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Collection
from datetime import timedelta

from mmsgate import __version__
from mmsgate.common.guard import AddressGuard, BlockedAddress, UnresolvedHost
from mmsgate.common.waiting import Outage, idle, lost_leases, pause
from mmsgate.core.model import from_epoch, utcnow
from mmsgate.core.records import PostbackAttempt, PostbackDelivery
from mmsgate.core.roles import Outbox
from mmsgate.errors import StoreError
from mmsgate.postbacks import SIGNATURE_HEADER, sign
from mmsgate.postbacks.http import NotSent, PostbackClient

log = logging.getLogger("mmsgate.postbacks")
CLAIM_GATHER = 0.005
"""Seconds to let more deliveries finish once one has, so one claim refills their slots together."""
NO_URL = "dropped: the account has no postback URL now"
"""The error of a postback whose account (or campaign) no longer has a postback URL when it is claimed."""


def _postback_id(postback: PostbackDelivery) -> int:
    return postback.id


class PostbackSender:
    """Delivers due postbacks, ``concurrency`` at a time."""

    def __init__(
        self,
        outbox: Outbox,
        owner: str,
        *,
        guard: AddressGuard,
        timeout: float = 10.0,
        retries: int = 5,
        retry_interval: float = 300.0,
        concurrency: int = 256,
        per_account: int = 64,
        idle_wait: float = 0.5,
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
        database: str = "the database",
    ) -> None:
        self.outbox = outbox
        self.owner = owner
        self.guard = guard
        self.timeout = timeout
        self.retries = retries
        self.retry_interval = retry_interval
        self.concurrency = concurrency
        self.per_account = per_account
        self.idle_wait = idle_wait
        self.lease_seconds = lease_seconds
        self.renew_every = min(renew_seconds, lease_seconds / 3)
        """Seconds between two renewals of the leases of the postbacks in flight."""
        self._renewer: asyncio.Task[None] | None = None
        self._outage = Outage(log, database)
        self._http = PostbackClient(guard, timeout=timeout)
        self._running: dict[asyncio.Task[None], PostbackDelivery] = {}
        self._inflight = 0
        """POSTs under way; a slot is free again as soon as its exchange ends, before its outcome is stored."""
        self._per_account: Counter[str] = Counter()
        self._started: dict[int, float] = {}
        """When the POST of each postback in flight started (by postback id), for its attempt's record."""
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self, accounts: Collection[str] = ()) -> None:
        """Postbacks may be due (new ones of ``accounts``, when given): claim now, unless each of those
        accounts already holds as many in flight as a claim may add to (the next slot it frees claims
        them): a claim that skips every account it finds walks the account's whole backlog for nothing."""
        if accounts and all(not self._claimable(account) for account in accounts):
            return
        self._wake.set()

    def _claimable(self, account_id: str) -> bool:
        """Whether a claim may take postbacks of ``account_id`` (it skips accounts near their share)."""
        return self._per_account.get(account_id, 0) + self._half_share <= self.per_account

    @property
    def _half_share(self) -> int:
        return max(1, self.per_account // 2)

    async def run(self) -> None:
        while not self._stopping.is_set():
            # claim at most half a share at a time, skipping accounts that hold half their share or more:
            # no account ever holds more than its share, so one account's backlog (or a receiver that
            # hangs) never takes the slots of the others
            half = self._half_share
            while (free := min(self.concurrency - self._inflight, half)) > 0:
                busy = [a for a in self._per_account if not self._claimable(a)]
                try:
                    claimed = await self.outbox.claim_postbacks(
                        self.owner, limit=free, lease_seconds=self.lease_seconds, skip_accounts=busy
                    )
                except StoreError as exc:
                    await pause(self._stopping, self._outage.failed(exc))
                    break
                self._outage.recovered()
                for postback in claimed:
                    task = asyncio.create_task(self._deliver(postback), name=f"postback-{postback.id}")
                    self._running[task] = postback
                    self._inflight += 1
                    self._per_account[postback.account_id] += 1
                    task.add_done_callback(self._running.pop)
                if claimed and (self._renewer is None or self._renewer.done()):
                    self._renewer = asyncio.create_task(self._keep_leases(), name="postback-leases")
                if len(claimed) < free:
                    break  # nothing more is due of the accounts a claim may take now
            # then wait for a reason to claim again (while postbacks are in flight, a few ms more, so that
            # one claim takes what came meanwhile): claiming again at once took 3 postbacks a claim
            await self._idle()

    def _release(self, postback: PostbackDelivery) -> None:
        was_full = self._inflight >= self.concurrency
        self._inflight -= 1
        self._per_account[postback.account_id] -= 1
        if self._per_account[postback.account_id] <= 0:
            del self._per_account[postback.account_id]
        if was_full or self._claimable(postback.account_id):
            self._wake.set()  # a claim can take more again: of this account, or of any

    async def _idle(self) -> None:
        await idle(self._wake, self._stopping, self.idle_wait, CLAIM_GATHER, busy=self._inflight > 0)

    async def _post(self, postback: PostbackDelivery, url: str) -> tuple[int | None, str | None]:
        """POST once to ``url``: the HTTP status (None without an answer), and None when delivered, else
        what went wrong."""
        body = postback.body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"mmsgate/{__version__}"}
        if postback.secret:
            headers[SIGNATURE_HEADER] = sign(postback.secret, body)
        try:
            status = await self._http.post(url, body, headers)
        except (NotSent, BlockedAddress, UnresolvedHost) as exc:  # no answer, or an address not to post to
            return None, str(exc)
        if 200 <= status < 300:
            return status, None
        return status, f"HTTP {status}"

    def _attempt(self, postback: PostbackDelivery, status: int | None, error: str | None) -> PostbackAttempt:
        started = self._started.pop(postback.id, time.time())
        return PostbackAttempt(
            postback.id,
            postback.subject_id,
            postback.attempts,
            from_epoch(started),
            time.time() - started,
            status,
            error,
            postback.url,
        )

    async def _deliver(self, postback: PostbackDelivery) -> None:
        self._started[postback.id] = time.time()
        status: int | None = None
        error: str | None
        try:
            if postback.url is None:
                error = NO_URL
            else:
                status, error = await self._post(postback, postback.url)
        except Exception as exc:  # a URL no HTTP client can use, say: a failed attempt, never a lost postback
            log.exception("postback %s to %s could not be sent", postback.event_id, postback.url)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._release(postback)
        attempt = self._attempt(postback, status, error)
        try:
            if error is None:
                await self.outbox.postback_attempted(attempt, self.owner, retry_at=None)
            elif postback.url is None:
                log.warning("postback %s of account %s %s", postback.event_id, postback.account_id, NO_URL)
                await self.outbox.postback_attempted(attempt, self.owner, retry_at=None)
            elif postback.attempts > self.retries:
                log.warning("postback %s to %s failed for good: %s", postback.event_id, postback.url, error)
                await self.outbox.postback_attempted(attempt, self.owner, retry_at=None)
            else:
                run_at = utcnow() + timedelta(seconds=self.retry_interval)
                await self.outbox.postback_attempted(attempt, self.owner, retry_at=run_at)
        except StoreError as exc:
            log.warning("postback %s: outcome not recorded (%s); it will be sent again", postback.event_id, exc)

    async def _keep_leases(self) -> None:
        """While postbacks are in flight, renew all their leases every ``renew_every`` seconds."""
        while self._running:
            await asyncio.sleep(self.renew_every)
            held = {postback.id: postback for postback in self._running.values()}
            if not held:
                return
            try:
                kept = await self.outbox.extend_postback_leases(
                    sorted(held), self.owner, lease_seconds=self.lease_seconds
                )
            except StoreError as exc:
                log.warning("cannot renew postback leases: %s", exc)
                continue
            unheld = set(held) - kept
            for lost in sorted(await lost_leases(self._running, unheld, _postback_id)):
                log.warning(
                    "postback %s: lease lost while it is sent; another worker may send it too", held[lost].event_id
                )

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let deliveries in flight finish within ``grace``; the rest are sent again later."""
        self._stopping.set()
        try:
            await self._finish(grace)
        finally:
            if self._renewer is not None:
                self._renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._renewer
            await self._http.aclose()

    async def _finish(self, grace: float) -> None:
        if self._running:
            running = dict(self._running)
            _, unfinished = await asyncio.wait(list(running), timeout=grace)
            for task in unfinished:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*unfinished, return_exceptions=True)
            for task in unfinished:  # released now rather than when their lease runs out
                with contextlib.suppress(StoreError):
                    attempt = self._attempt(running[task], None, "released at shutdown")
                    await self.outbox.postback_attempted(attempt, self.owner, retry_at=utcnow())

"""An account's postbacks in the outbox: ``postbacks show`` (what waits, what is held, what failed) and
``postbacks retry`` (send the failed and the waiting ones now, to the URL configured now)."""

from __future__ import annotations

from datetime import datetime

import click

from mmsgate.cli.common import emit, store_options, with_store
from mmsgate.core.records import AccountBacklog
from mmsgate.store import Store


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(backlog: AccountBacklog, url: str | None) -> str:
    """The backlog as lines of text: the counts, then each failing postback with what it holds."""
    lines = [
        f"postback URL: {url or '(none: postbacks are dropped)'}",
        f"waiting: {backlog.waiting} (oldest queued {_when(backlog.oldest)}), retrying after a failure: "
        f"{backlog.retrying}, held behind a failing one: {backlog.held}, failed: {backlog.failed}",
    ]
    for f in backlog.failing:
        lines.append(
            f"  {f.event_id} {f.code} of {f.subject_id}: attempt {f.attempts} failed ({f.last_error}); "
            f"next try {_when(f.next_try)}; holds {f.held} later postback(s)"
        )
    return "\n".join(lines)


@click.group()
def postbacks() -> None:
    """An account's postbacks: show what waits, retry now."""


@postbacks.command("show")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--failing", type=click.IntRange(min=0), default=20, show_default=True, help="failing ones listed")
@store_options
@with_store
async def postbacks_show(store: Store, account_id: str, failing: int, as_json: bool) -> None:
    """What waits in the outbox for ACCOUNT: how many, since when, how many are held behind a failing one
    (a message's postbacks go in order), and the failing ones with their last error and next try."""
    account = await store.accounts.get_account(account_id)
    backlog = await store.backlog.postback_backlog(account_id, failing=failing)
    emit(as_json, {"backlog": backlog, "postback_url": account.postback_url}, describe(backlog, account.postback_url))


@postbacks.command("retry")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def postbacks_retry(store: Store, account_id: str, as_json: bool) -> None:
    """Send ACCOUNT's failed postbacks and those waiting for a later retry now, to the postback URL
    configured now (a running gateway takes them within a second). A failed one gets one more attempt."""
    account = await store.accounts.get_account(account_id)
    failed, waiting = await store.backlog.retry_postbacks(account_id)
    human = f"{failed + waiting} postback(s) of {account_id} due now ({failed} failed, {waiting} waiting for a retry)"
    if not account.postback_url:
        human += "\nwarning: the account has no postback URL: they will be dropped (failed) unless a campaign has one"
    emit(as_json, {"account_id": account_id, "failed": failed, "waiting": waiting}, human)


COMMANDS = (postbacks,)

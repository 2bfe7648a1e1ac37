"""Administering accounts: ``account``, ``key``, ``campaign``, ``number`` and ``block``."""

from __future__ import annotations

import click

from mmsgate.cli.common import emit, kind_of, plain, store_options, with_store
from mmsgate.cli.common import number as digits_of
from mmsgate.core.model import NumberKind
from mmsgate.store import Store


@click.group()
def account() -> None:
    """Accounts: create, list, set, delete."""


@account.command("create")
@click.argument("name")
@store_options
@with_store
async def account_create(store: Store, name: str, as_json: bool) -> None:
    """Create an account and its first API key (the key is shown once)."""
    acc = await store.accounts.create_account(name)
    _, secret = await store.accounts.create_key(acc.id)
    emit(
        as_json,
        {"account_id": acc.id, "api_key": secret},
        f"account {acc.id} created\nAPI key (shown once): {secret}",
    )


@account.command("list")
@store_options
@with_store
async def account_list(store: Store, as_json: bool) -> None:
    """List accounts."""
    accounts = await store.accounts.list_accounts()
    lines = [f"{a.id}  {a.name}{'  (disabled)' if a.disabled else ''}" for a in accounts]
    emit(as_json, {"accounts": accounts}, "\n".join(lines) or "no accounts")


@account.command("set")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--postback-url", default=None, help="where postbacks go ('' clears it)")
@click.option("--postback-secret", default=None, help="secret that signs postbacks ('' clears it)")
@click.option("--transcoding", type=click.Choice(["on", "off"]), default=None)
@click.option("--disabled", type=click.Choice(["true", "false"]), default=None)
@click.option("--rate-limit", type=click.IntRange(min=0), default=None, help="API requests per second; 0: none")
@store_options
@with_store
async def account_set(
    store: Store,
    account_id: str,
    postback_url: str | None,
    postback_secret: str | None,
    transcoding: str | None,
    disabled: str | None,
    rate_limit: int | None,
    as_json: bool,
) -> None:
    """Change an account's settings."""
    acc = await store.accounts.update_account(
        account_id,
        postback_url=postback_url,
        postback_secret=postback_secret,
        transcoding=None if transcoding is None else transcoding == "on",
        disabled=None if disabled is None else disabled == "true",
        rate_limit=rate_limit,
    )
    shown = plain(acc)
    if shown.get("postback_secret"):
        shown["postback_secret"] = "********"
    emit(as_json, shown, f"account {acc.id} updated")


@account.command("delete")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def account_delete(store: Store, account_id: str, as_json: bool) -> None:
    """Delete an account with its keys, campaigns, numbers and blocks (messages are kept)."""
    await store.accounts.delete_account(account_id)
    emit(as_json, {"deleted": account_id}, f"account {account_id} deleted")


@click.group()
def key() -> None:
    """API keys: create, list, revoke, remove."""


@key.command("create")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def key_create(store: Store, account_id: str, as_json: bool) -> None:
    """Create an API key (shown once; only its hash is stored)."""
    k, secret = await store.accounts.create_key(account_id)
    emit(as_json, {"key_id": k.id, "api_key": secret}, f"key {k.id} created\nAPI key (shown once): {secret}")


@key.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def key_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's keys (ids and prefixes; keys themselves are never stored)."""
    keys = await store.accounts.list_keys(account_id)
    lines = [f"{k.id}  {k.prefix}...{'  (revoked)' if k.revoked else ''}" for k in keys]
    emit(as_json, {"keys": keys}, "\n".join(lines) or "no keys")


@key.command("revoke")
@click.argument("key_id")
@store_options
@with_store
async def key_revoke(store: Store, key_id: str, as_json: bool) -> None:
    """Revoke a key: calls with it answer E104."""
    await store.accounts.revoke_key(key_id)
    emit(as_json, {"revoked": key_id}, f"key {key_id} revoked")


@key.command("remove")
@click.argument("key_id")
@store_options
@with_store
async def key_remove(store: Store, key_id: str, as_json: bool) -> None:
    """Delete a key for good: calls with it answer E104 and it is no longer listed."""
    await store.accounts.delete_key(key_id)
    emit(as_json, {"removed": key_id}, f"key {key_id} removed")


@click.group()
def campaign() -> None:
    """Campaigns (the API's service-id): create, list, remove."""


@campaign.command("create")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--postback-url", default=None, help="postbacks of this campaign go here instead")
@store_options
@with_store
async def campaign_create(store: Store, account_id: str, postback_url: str | None, as_json: bool) -> None:
    """Create a campaign; prints its service-id."""
    c = await store.numbers.create_campaign(account_id, postback_url)
    emit(as_json, {"service_id": c.service_id}, f"campaign created: service-id {c.service_id}")


@campaign.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def campaign_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's campaigns."""
    items = await store.numbers.list_campaigns(account_id)
    emit(as_json, {"campaigns": items}, "\n".join(c.service_id for c in items) or "no campaigns")


@campaign.command("remove")
@click.argument("service_id")
@store_options
@with_store
async def campaign_remove(store: Store, service_id: str, as_json: bool) -> None:
    """Remove a campaign (and the numbers allowed only for it)."""
    await store.numbers.delete_campaign(service_id)
    emit(as_json, {"removed": service_id}, f"campaign {service_id} removed")


@click.group()
def number() -> None:
    """Sender numbers (short code, toll-free, 10DLC): add, list, remove."""


@number.command("add")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("value", metavar="NUMBER")
@click.option("--campaign", "service_id", default=None, help="allow it only for this service-id")
@click.option("--kind", type=click.Choice([k.value for k in NumberKind]), default=None, help="default: guessed")
@store_options
@with_store
async def number_add(
    store: Store, account_id: str, value: str, service_id: str | None, kind: str | None, as_json: bool
) -> None:
    """Give an account a sender number."""
    digits = digits_of(value)
    n = await store.numbers.add_number(account_id, digits, NumberKind(kind) if kind else kind_of(digits), service_id)
    emit(as_json, {"number": n}, f"number {n.number} ({n.kind.value}) added to {account_id}")


@number.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def number_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's sender numbers."""
    await store.accounts.get_account(account_id)
    items = await store.numbers.list_numbers(account_id)
    lines = [f"{n.number}  {n.kind.value}  {n.service_id or 'any campaign'}" for n in items]
    emit(as_json, {"numbers": items}, "\n".join(lines) or "no numbers")


@number.command("remove")
@click.argument("value", metavar="NUMBER")
@store_options
@with_store
async def number_remove(store: Store, value: str, as_json: bool) -> None:
    """Take a sender number away from its account."""
    digits = digits_of(value)
    await store.numbers.remove_number(digits)
    emit(as_json, {"removed": digits}, f"number {digits} removed")


@click.group()
def block() -> None:
    """Blocked recipients (E114): add, list, remove."""


@block.command("add")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("value", metavar="NUMBER")
@store_options
@with_store
async def block_add(store: Store, account_id: str, value: str, as_json: bool) -> None:
    """Block a recipient number for an account."""
    b = await store.numbers.block_number(account_id, digits_of(value))
    emit(as_json, {"blocked": b}, f"{b.number} blocked for {account_id}")


@block.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def block_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's blocked numbers."""
    items = await store.numbers.list_blocked(account_id)
    emit(as_json, {"blocked": [b.number for b in items]}, "\n".join(b.number for b in items) or "none blocked")


@block.command("remove")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("value", metavar="NUMBER")
@store_options
@with_store
async def block_remove(store: Store, account_id: str, value: str, as_json: bool) -> None:
    """Unblock a recipient number."""
    digits = digits_of(value)
    await store.numbers.unblock_number(account_id, digits)
    emit(as_json, {"unblocked": digits}, f"{digits} unblocked for {account_id}")


COMMANDS = (account, key, campaign, number, block)

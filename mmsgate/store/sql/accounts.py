"""Accounts, their API keys and where their postbacks go; campaigns, sender numbers and blocked recipients
(the :class:`~mmsgate.core.roles.Accounts` and :class:`~mmsgate.core.roles.Numbers` roles)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from mmsgate.core.model import (
    Account,
    AccountConfig,
    ApiKey,
    BlockedNumber,
    Campaign,
    NumberKind,
    SenderNumber,
    from_epoch,
)
from mmsgate.errors import Conflict, NotFound
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.rows import ACCOUNT_COLUMNS, KEY_COLUMNS, account_row, hash_key, key_row


async def require_account(db: SqlDatabase, account_id: str) -> None:
    """:class:`NotFound` unless the account exists."""
    await db.one("SELECT id FROM accounts WHERE id = ?", (account_id,), f"no account {account_id}")


async def numbers_of(db: SqlDatabase, account_id: str) -> list[SenderNumber]:
    rows = await db.read(
        "SELECT number, account_id, kind, service_id FROM numbers WHERE account_id = ? ORDER BY number",
        (account_id,),
    )
    return [SenderNumber(r[0], r[1], NumberKind(r[2]), r[3]) for r in rows]


class SqlAccounts:
    """Accounts and API keys."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db
        self._key_watchers: list[Callable[[], None]] = []

    def watch_keys(self, listener: Callable[[], None]) -> None:
        self._key_watchers.append(listener)

    def _keys_changed(self) -> None:
        for listener in self._key_watchers:
            listener()

    async def create_account(self, name: str) -> Account:
        # every account gets a postback secret, so its postbacks are signed from the first one
        account = Account(id=f"acc_{secrets.token_hex(8)}", name=name, postback_secret=f"pbs_{secrets.token_hex(24)}")
        await self._db.write(
            [
                (
                    f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (account.id, name, False, True, None, account.postback_secret, 0, account.created_at.timestamp()),
                )
            ]
        )
        return account

    async def get_account(self, account_id: str) -> Account:
        row = await self._db.one(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,), f"no account {account_id}"
        )
        return account_row(row)

    async def list_accounts(self) -> list[Account]:
        return [
            account_row(r) for r in await self._db.read(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at")
        ]

    async def update_account(
        self,
        account_id: str,
        *,
        postback_url: str | None = None,
        postback_secret: str | None = None,
        transcoding: bool | None = None,
        disabled: bool | None = None,
        rate_limit: int | None = None,
    ) -> Account:
        given: dict[str, Any] = {}
        if postback_url is not None:
            given["postback_url"] = postback_url or None
        if postback_secret is not None:
            given["postback_secret"] = postback_secret or None
        if transcoding is not None:
            given["transcoding"] = transcoding
        if disabled is not None:
            given["disabled"] = disabled
        if rate_limit is not None:
            given["rate_limit"] = rate_limit
        if given:
            assignments = ", ".join(f"{column} = ?" for column in given)
            rows = await self._db.write(
                [
                    (
                        f"UPDATE accounts SET {assignments} WHERE id = ? RETURNING id",
                        (*given.values(), account_id),
                    )
                ]
            )
            if not rows[0]:
                raise NotFound(f"no account {account_id}")
        return await self.get_account(account_id)

    async def delete_account(self, account_id: str) -> None:
        rows = await self._db.write([("DELETE FROM accounts WHERE id = ? RETURNING id", (account_id,))])
        if not rows[0]:
            raise NotFound(f"no account {account_id}")
        self._keys_changed()  # its keys went with it

    async def account_config(self, account_id: str) -> AccountConfig:
        account = await self.get_account(account_id)
        campaigns = await self._db.read("SELECT service_id FROM campaigns WHERE account_id = ?", (account_id,))
        numbers = await numbers_of(self._db, account_id)
        blocked = await self._db.read("SELECT number FROM blocked_numbers WHERE account_id = ?", (account_id,))
        return AccountConfig(
            account=account,
            service_ids=frozenset(r[0] for r in campaigns),
            numbers={n.number: n for n in numbers},
            blocked=frozenset(r[0] for r in blocked),
        )

    async def postback_target(self, account_id: str, service_id: str | None) -> str | None:
        if service_id is not None:
            rows = await self._db.read("SELECT postback_url FROM campaigns WHERE service_id = ?", (service_id,))
            if rows and rows[0][0]:
                return str(rows[0][0])
        rows = await self._db.read("SELECT postback_url FROM accounts WHERE id = ?", (account_id,))
        return str(rows[0][0]) if rows and rows[0][0] else None

    async def create_key(self, account_id: str) -> tuple[ApiKey, str]:
        await self.get_account(account_id)
        secret = f"mmsk_{secrets.token_urlsafe(32)}"
        key = ApiKey(id=f"key_{secrets.token_hex(8)}", account_id=account_id, prefix=secret[:10])
        try:
            await self._db.write(
                [
                    (
                        f"INSERT INTO api_keys ({KEY_COLUMNS}, key_hash) VALUES (?, ?, ?, ?, ?, ?)",
                        (key.id, account_id, key.prefix, False, key.created_at.timestamp(), hash_key(secret)),
                    )
                ]
            )
        except NotFound as exc:
            raise NotFound(f"no account {account_id}") from exc
        return key, secret

    async def list_keys(self, account_id: str) -> list[ApiKey]:
        await self.get_account(account_id)
        rows = await self._db.read(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = ? ORDER BY created_at", (account_id,)
        )
        return [key_row(r) for r in rows]

    async def revoke_key(self, key_id: str) -> None:
        rows = await self._db.write([("UPDATE api_keys SET revoked = ? WHERE id = ? RETURNING id", (True, key_id))])
        if not rows[0]:
            raise NotFound(f"no key {key_id}")
        self._keys_changed()

    async def delete_key(self, key_id: str) -> None:
        rows = await self._db.write([("DELETE FROM api_keys WHERE id = ? RETURNING id", (key_id,))])
        if not rows[0]:
            raise NotFound(f"no key {key_id}")
        self._keys_changed()

    async def authenticate(self, api_key: str) -> tuple[ApiKey, Account] | None:
        key_columns = ", ".join(f"k.{c.strip()}" for c in KEY_COLUMNS.split(","))
        account_columns = ", ".join(f"a.{c.strip()}" for c in ACCOUNT_COLUMNS.split(","))
        rows = await self._db.read(
            f"SELECT {key_columns}, {account_columns} FROM api_keys k JOIN accounts a ON a.id = k.account_id "
            "WHERE k.key_hash = ?",
            (hash_key(api_key),),
        )
        if not rows:
            return None
        return key_row(rows[0][:5]), account_row(rows[0][5:])


class SqlNumbers:
    """Campaigns, sender numbers and blocked recipients."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def create_campaign(self, account_id: str, postback_url: str | None = None) -> Campaign:
        await require_account(self._db, account_id)
        for _ in range(5):
            campaign = Campaign(
                service_id=str(10**9 + secrets.randbelow(9 * 10**9)),
                account_id=account_id,
                postback_url=postback_url,
            )
            try:
                await self._db.write(
                    [
                        (
                            "INSERT INTO campaigns (service_id, account_id, postback_url, created_at) "
                            "VALUES (?, ?, ?, ?)",
                            (campaign.service_id, account_id, postback_url, campaign.created_at.timestamp()),
                        )
                    ]
                )
            except Conflict:
                continue
            return campaign
        raise Conflict("could not find a free service-id")  # pragma: no cover - 1 in 10^40

    async def list_campaigns(self, account_id: str) -> list[Campaign]:
        await require_account(self._db, account_id)
        rows = await self._db.read(
            "SELECT service_id, account_id, postback_url, created_at FROM campaigns WHERE account_id = ? "
            "ORDER BY created_at",
            (account_id,),
        )
        return [Campaign(r[0], r[1], r[2], from_epoch(r[3])) for r in rows]

    async def delete_campaign(self, service_id: str) -> None:
        rows = await self._db.write(
            [("DELETE FROM campaigns WHERE service_id = ? RETURNING service_id", (service_id,))]
        )
        if not rows[0]:
            raise NotFound(f"no campaign {service_id}")

    async def add_number(
        self, account_id: str, number: str, kind: NumberKind, service_id: str | None = None
    ) -> SenderNumber:
        await require_account(self._db, account_id)
        if service_id is not None:
            owner = await self._db.read("SELECT account_id FROM campaigns WHERE service_id = ?", (service_id,))
            if not owner or owner[0][0] != account_id:
                raise NotFound(f"account {account_id} has no campaign {service_id}")
        try:
            await self._db.write(
                [
                    (
                        "INSERT INTO numbers (number, account_id, kind, service_id, created_at) VALUES (?, ?, ?, ?, ?)",
                        (number, account_id, kind.value, service_id, time.time()),
                    )
                ]
            )
        except Conflict as exc:
            raise Conflict(f"number {number} is already registered") from exc
        return SenderNumber(number=number, account_id=account_id, kind=kind, service_id=service_id)

    async def list_numbers(self, account_id: str) -> list[SenderNumber]:
        return await numbers_of(self._db, account_id)

    async def remove_number(self, number: str) -> None:
        rows = await self._db.write([("DELETE FROM numbers WHERE number = ? RETURNING number", (number,))])
        if not rows[0]:
            raise NotFound(f"no number {number}")

    async def block_number(self, account_id: str, number: str) -> BlockedNumber:
        await require_account(self._db, account_id)
        try:
            await self._db.write(
                [
                    (
                        "INSERT INTO blocked_numbers (account_id, number, created_at) VALUES (?, ?, ?)",
                        (account_id, number, time.time()),
                    )
                ]
            )
        except Conflict:
            pass  # blocking twice is blocking
        return BlockedNumber(account_id=account_id, number=number)

    async def list_blocked(self, account_id: str) -> list[BlockedNumber]:
        await require_account(self._db, account_id)
        rows = await self._db.read(
            "SELECT account_id, number FROM blocked_numbers WHERE account_id = ? ORDER BY number",
            (account_id,),
        )
        return [BlockedNumber(r[0], r[1]) for r in rows]

    async def unblock_number(self, account_id: str, number: str) -> None:
        rows = await self._db.write(
            [
                (
                    "DELETE FROM blocked_numbers WHERE account_id = ? AND number = ? RETURNING number",
                    (account_id, number),
                )
            ]
        )
        if not rows[0]:
            raise NotFound(f"{number} is not blocked for account {account_id}")

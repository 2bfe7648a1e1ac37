"""What comes in from handsets and carriers (the :class:`~mmsgate.carriers.base.InboundSink`).

Inbound MMS (MO): a handset's message to one of an account's numbers becomes stored parts and an N401
postback whose ``content`` URLs the gateway serves (unguessable, expiring after the retention time).
Requests a carrier posts (an MM7 report, MO or read reply) are kept, body and all, with the job that
handles them, before the carrier is answered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from mmsgate.carriers.base import InboundMms, KeptRequest
from mmsgate.core.ids import new_id, url_token
from mmsgate.core.mms import extension_for
from mmsgate.core.model import iso, utcnow
from mmsgate.core.records import Inbound, InboundPart
from mmsgate.core.roles import Blobs, Incoming
from mmsgate.errors import InboundRefused
from mmsgate.postbacks.events import PostbackBuilder


def keyword_of(subject: str | None, text: str | None) -> str | None:
    """The first word of the subject, else of the text (upper-cased, as keywords are matched)."""
    for source in (subject, text):
        if source and source.split():
            return source.split()[0].upper()
    return None


class InboundReceiver:
    """Stores what handsets send (queuing the N401 postbacks) and what carriers post."""

    def __init__(
        self,
        incoming: Incoming,
        blobs: Blobs,
        postbacks: PostbackBuilder,
        public_url: Callable[[], Awaitable[str]],
        *,
        retention_seconds: float,
        max_bytes: int,
    ) -> None:
        self.incoming = incoming
        self.blobs = blobs
        self.after_keep: Callable[[], None] | None = None
        """Called once a carrier's request is kept (``serve`` wakes its workers)."""
        self.postbacks = postbacks
        self.public_url = public_url
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes

    async def receive(self, message: InboundMms) -> str:
        recipient, owner = None, None
        for number in message.recipients:
            owner = await self.incoming.number_owner(number)
            if owner is not None:
                recipient = number
                break
        if owner is None or recipient is None:
            raise InboundRefused(f"{', '.join(message.recipients)}: not a number of any account")
        if not message.files:
            raise InboundRefused("an MMS needs at least one part (text or file)")
        total = sum(len(f.data) for f in message.files)
        if total > self.max_bytes:
            raise InboundRefused(f"the MMS is {total} bytes; at most {self.max_bytes} are taken")
        parts: list[InboundPart] = []
        for position, file in enumerate(message.files, 1):
            digest = await asyncio.to_thread(self.blobs.put, file.data)
            ext = "txt" if file.content_type.startswith("text/plain") else extension_for(file.content_type)
            parts.append(InboundPart(position, f"{position}.{ext}", file.content_type, len(file.data), digest))
        text = next(
            (f.data.decode("utf-8", "replace") for f in message.files if f.content_type.startswith("text/plain")), None
        )
        now = utcnow()
        inbound = Inbound(
            id=new_id(),
            token=url_token(),
            account_id=owner.account_id,
            carrier=message.carrier,
            sender=message.sender,
            recipient=recipient,
            subject=message.subject,
            keyword=keyword_of(message.subject, text),
            copy_to=tuple(n for n in message.recipients if n != recipient),
            expires_at=now + timedelta(seconds=self.retention_seconds),
            created_at=now,
            parts=tuple(parts),
            linked_id=message.linked_id,
        )
        base = (await self.public_url()).rstrip("/")
        fields: dict[str, object] = {"from": inbound.sender, "to": inbound.recipient}
        if inbound.keyword is not None:
            fields["keyword"] = inbound.keyword
        fields["tracking-id"] = inbound.id
        if message.operator_id is not None:
            fields["operator-id"] = message.operator_id
        fields["timestamp"] = iso(now)
        if inbound.subject is not None:
            fields["message-subject"] = inbound.subject
        fields["content"] = [{"file": f"{base}/mo/{inbound.token}/{p.name}"} for p in parts]
        if inbound.copy_to:
            fields["copy-to"] = [{"number": n} for n in inbound.copy_to]
        postback = await self.postbacks.for_inbound(owner.account_id, inbound.id, fields)
        await self.incoming.receive_inbound(inbound, postback)
        return inbound.id

    async def keep_request(self, connection: str, dedupe: str, kind: str, body: bytes, content_type: str) -> bool:
        digest = await asyncio.to_thread(self.blobs.put, body)
        kept = await self.incoming.keep_request(connection, dedupe, kind, digest, content_type)
        if kept and self.after_keep is not None:
            self.after_keep()
        return kept

    async def kept_request(self, connection: str, dedupe: str) -> KeptRequest:
        kind, digest, content_type = await self.incoming.kept_request(connection, dedupe)
        return KeptRequest(kind, await asyncio.to_thread(self.blobs.get, digest), content_type)

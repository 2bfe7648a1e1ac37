"""The store's roles: the narrow interfaces through which every part of the gateway reads and writes durable
state. A part takes the roles it needs in its constructor, never the whole store, so its signature says
what it may touch. ``mmsgate.store`` implements every role once in SQL for SQLite and PostgreSQL (one test
suite runs against both); nothing outside it sees SQL.

    Accounts     accounts, API keys, authentication, where postbacks go
    Numbers      campaigns, sender numbers, blocked recipients
    Accepting    what the API commits: messages and templates with their first job (group commit)
    Messages     reading messages and templates, their parts, events, postbacks and hosted pages
    Lifecycle    moving a message or template along its lifecycle, SMS segments and receipts
    KeptReports  delivery reports and SMS receipts that came before their submit's record
    JobQueue     claiming jobs under a lease, renewing, finishing and releasing them
    Outbox       claiming postbacks and recording each delivery attempt
    PostbackBacklog  how an account's postbacks wait in the outbox, and retrying them now
    Incoming     MMS that handsets send, and requests a carrier posted, kept before they are answered
    Connections  the configured carrier and SMS connections
    SandboxState the sandbox carrier's handsets, submissions and inboxes
    ConsoleState the console's sessions, password, uploads and lists
    Values       gateway-wide values (the public URL a running gateway announced)
    SendWindows  per-carrier throughput windows shared by every process
    Retention    deleting what is over
    Blobs        content-addressed files (prepared media, inbound parts, uploads)

Methods raise :class:`mmsgate.errors.StoreError` subclasses: ``NotFound``, ``Conflict``, and
``StoreUnavailable`` (retryable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mmsgate.core.codes import JobKind, TemplateState
from mmsgate.core.model import (
    Account,
    AccountConfig,
    ApiKey,
    BlockedNumber,
    Campaign,
    Event,
    Job,
    Message,
    NumberKind,
    Outgoing,
    Part,
    SenderNumber,
    Step,
    Template,
)
from mmsgate.core.records import (
    AccountBacklog,
    Connection,
    ConsoleUpload,
    Handset,
    HostedPage,
    Inbound,
    KeptReport,
    KnownHandset,
    MessageQuery,
    PostbackAttempt,
    PostbackDelivery,
    PostbackRecord,
    SandboxSms,
    SandboxSubmission,
    SmsReceipt,
    SmsSegmentState,
)


class Accounts(Protocol):
    """Accounts and their API keys (only a key's hash is stored)."""

    async def create_account(self, name: str) -> Account: ...

    async def get_account(self, account_id: str) -> Account: ...

    async def list_accounts(self) -> list[Account]: ...

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
        """Change the given settings (``None`` leaves one as it is; an empty URL or secret clears it)."""
        ...

    async def delete_account(self, account_id: str) -> None:
        """Remove the account with its keys, campaigns, numbers and blocks; messages stay for audit."""
        ...

    async def account_config(self, account_id: str) -> AccountConfig:
        """What the API checks a request against: the account, its campaigns, numbers and blocks."""
        ...

    async def postback_target(self, account_id: str, service_id: str | None) -> str | None:
        """Where an account's postbacks go: the campaign's URL, else the account's, else None."""
        ...

    async def create_key(self, account_id: str) -> tuple[ApiKey, str]:
        """Create a key; return it as stored and the secret key, which is never stored nor shown again."""
        ...

    async def list_keys(self, account_id: str) -> list[ApiKey]: ...

    async def revoke_key(self, key_id: str) -> None: ...

    async def delete_key(self, key_id: str) -> None:
        """Remove a key for good (revoking keeps it listed)."""
        ...

    async def authenticate(self, api_key: str) -> tuple[ApiKey, Account] | None:
        """Find the key (by its hash) and its account; None if there is no such key."""
        ...

    def watch_keys(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` each time this store revokes or removes a key, so the caches of its process
        forget what they know of keys at once; other processes' caches see it when their answers expire."""
        ...


class Numbers(Protocol):
    """An account's campaigns (``service-id``), sender numbers and blocked recipients."""

    async def create_campaign(self, account_id: str, postback_url: str | None = None) -> Campaign: ...

    async def list_campaigns(self, account_id: str) -> list[Campaign]: ...

    async def delete_campaign(self, service_id: str) -> None: ...

    async def add_number(
        self, account_id: str, number: str, kind: NumberKind, service_id: str | None = None
    ) -> SenderNumber: ...

    async def list_numbers(self, account_id: str) -> list[SenderNumber]: ...

    async def remove_number(self, number: str) -> None: ...

    async def block_number(self, account_id: str, number: str) -> BlockedNumber: ...

    async def list_blocked(self, account_id: str) -> list[BlockedNumber]: ...

    async def unblock_number(self, account_id: str, number: str) -> None: ...


class Accepting(Protocol):
    """What the API commits. Concurrent calls are committed in one transaction (group commit); each returns
    only after its own commit."""

    async def accept_message(self, message: Message) -> None:
        """Commit the message and the job that continues it, together (its acceptance is its first event)."""
        ...

    async def accept_template(self, template: Template) -> None:
        """Commit the template (processing) and its preparation job together."""
        ...

    async def get_template(self, account_id: str, mms_id: str) -> Template:
        """An account's template (``sendsavedmms`` sends it)."""
        ...


class Messages(Protocol):
    """Reading messages and templates with what happened to them."""

    async def get_message(self, account_id: str, tracking_id: str) -> Message: ...

    async def get_template(self, account_id: str, mms_id: str) -> Template: ...

    async def find_message(self, tracking_id: str) -> Message:
        """A message by tracking id, whatever its account (workers)."""
        ...

    async def find_template(self, mms_id: str) -> Template:
        """A template by id, whatever its account (workers)."""
        ...

    async def find_by_carrier_id(self, carrier: str, carrier_message_id: str) -> Message:
        """The message a carrier knows by this id (delivery reports)."""
        ...

    async def list_parts(self, owner_id: str) -> list[Part]:
        """A message's or template's prepared parts, in order."""
        ...

    async def list_events(self, subject_id: str) -> list[Event]:
        """A message's or template's events after its acceptance, oldest first (acceptance is the row itself)."""
        ...

    async def list_postbacks(self, subject_id: str) -> list[tuple[str, str, str, int]]:
        """A subject's postbacks, oldest first: (event id, code, state, attempts)."""
        ...

    async def find_hosted_page(self, code: str) -> HostedPage: ...

    async def sms_segments(self, tracking_id: str) -> list[SmsSegmentState]:
        """A message's SMS segments in order, each with its receipt once one came."""
        ...

    async def pending_report(self, tracking_id: str) -> KeptReport | None:
        """The report or receipt kept for the message until it is applied (see :class:`KeptReports`); None
        when there is none. A report that names no message (MM7) is found once its submit is recorded."""
        ...


class Lifecycle(Protocol):
    """Moving messages and templates along their lifecycle (:mod:`mmsgate.core.lifecycle`). Every change
    is a compare-and-set committed with concurrent ones, with its event and postback in the same write."""

    async def media_ready(
        self,
        tracking_id: str,
        parts: Sequence[Part],
        *,
        code: str | None,
        status: str,
        details: str,
        postback: Outgoing | None = None,
        submitting: str | None = None,
    ) -> bool:
        """Store an accepted message's prepared parts and move it to media-ready, with its event and
        postback, together. False if the message was no longer accepted (nothing changed).

        With ``submitting`` (a carrier name) the message goes straight on to submitting, recorded in the
        same transaction: the record before the carrier is called."""
        ...

    async def advance(self, step: Step) -> bool:
        """Apply one transition with its event, postback and job effects, if the message is in one of the
        target's source states; False (nothing changed) otherwise."""
        ...

    async def record_event(self, tracking_id: str, status: str, details: str) -> None:
        """An event on a message that changes nothing else (a read reply, say)."""
        ...

    async def template_ready(
        self, mms_id: str, parts: Sequence[Part], *, details: str, postback: Outgoing | None = None
    ) -> bool:
        """Store a processing template's prepared parts and make it ready (N003), together."""
        ...

    async def set_template_state(
        self, mms_id: str, state: TemplateState, *, code: str | None, details: str, postback: Outgoing | None = None
    ) -> None:
        """Move a template to a new state and record the event that says why (and its postback)."""
        ...

    async def create_hosted_page(self, tracking_id: str, code: str, expires_at: datetime) -> HostedPage:
        """The message's hosted page: created with ``code`` the first time, the existing one after."""
        ...

    async def sms_submitted(self, step: Step, connector: str, message_ids: Sequence[str]) -> bool:
        """Apply ``step`` (to sms-submitted) and record the SMSC's id of each segment, together."""
        ...

    async def record_sms_receipt(self, receipt: SmsReceipt, *, keep_until: datetime | None = None) -> str | None:
        """Keep a receipt (a final one replaces an en-route one); the tracking id of the message whose
        segment it is, None if no segment is known by that id (yet). With ``keep_until``, a final receipt
        whose segment is not recorded yet is also kept as a :class:`~mmsgate.core.records.KeptReport` until
        then, in the same write, so that the sweep of :class:`KeptReports` applies it once it is."""
        ...


class KeptReports(Protocol):
    """Delivery reports and SMS receipts that came before the record of the submit they report on (a
    carrier may answer faster than the gateway records its answer): kept until that record exists, then
    applied and forgotten, or until they expire with their message."""

    async def keep_report(self, report: KeptReport) -> bool:
        """Keep a report; False (nothing changed) when one was kept already for that carrier's id."""
        ...

    async def kept_report(self, tracking_id: str, carrier: str, carrier_message_id: str) -> KeptReport | None:
        """The delivery report kept for a message just recorded submitted (by its tracking id, or by the
        carrier's id for it); None, nearly always."""
        ...

    async def matched_reports(self, limit: int = 100) -> list[tuple[KeptReport, str]]:
        """Kept reports whose submit is recorded by now, oldest first, each with its message's tracking id."""
        ...

    async def forget_report(self, report: KeptReport) -> None:
        """Delete a kept report (applied, or no longer applicable)."""
        ...

    async def expire_reports(self, now: datetime, limit: int = 100) -> list[KeptReport]:
        """Delete and return kept reports whose expiry passed before ``now`` without their submit's record."""
        ...


class JobQueue(Protocol):
    """Jobs claimed under a lease; retry state lives in the row."""

    async def claim_jobs(
        self, owner: str, *, limit: int, lease_seconds: float, kinds: Sequence[JobKind] | None = None
    ) -> list[Job]:
        """Atomically lease up to ``limit`` due jobs (queued and due, or running with an expired lease).

        No two claimers ever hold the same job at once."""
        ...

    async def extend_leases(self, job_ids: Sequence[int], owner: str, *, lease_seconds: float) -> set[int]:
        """Keep holding jobs that are still running; the ids whose lease ``owner`` still held."""
        ...

    async def finish_job(self, job_id: int, owner: str) -> bool:
        """Mark a job done; False if ``owner`` no longer holds its lease."""
        ...

    async def retry_job(self, job_id: int, owner: str, *, run_at: datetime, error: str | None) -> bool:
        """Release a job to run again at ``run_at`` (``error`` None: it is waiting, not failing);
        False if ``owner`` no longer holds its lease."""
        ...

    async def watch_jobs(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when another process commits new jobs (PostgreSQL: LISTEN/NOTIFY), so
        workers claim them at once rather than at their next poll. A single process needs none."""
        ...


class Outbox(Protocol):
    """The postback outbox: claimed under a lease, each delivery attempt recorded."""

    async def claim_postbacks(
        self, owner: str, *, limit: int, lease_seconds: float, skip_accounts: Sequence[str] = ()
    ) -> list[PostbackDelivery]:
        """Lease due postbacks, oldest first, never one whose message has an earlier postback still
        pending (a message's postbacks arrive in order), and none of ``skip_accounts``. Each comes with
        the URL and secret configured now, read in the same statement: a change committed before the
        claim is what the attempt uses."""
        ...

    async def postback_attempted(self, attempt: PostbackAttempt, owner: str, *, retry_at: datetime | None) -> bool:
        """End one delivery attempt of a claimed postback and record it (time, HTTP status or error),
        together: delivered when the attempt succeeded, else queued again at ``retry_at``, or failed for
        good when there is none. False (nothing recorded) if ``owner`` no longer holds the lease."""
        ...

    async def extend_postback_leases(
        self, postback_ids: Sequence[int], owner: str, *, lease_seconds: float
    ) -> set[int]:
        """Keep holding postbacks still being sent; the ids whose lease ``owner`` still held."""
        ...

    def on_outbox(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Call ``listener`` with the accounts of the postbacks that this process commits to the outbox
        (to send them at once rather than at the sender's next poll)."""
        ...


class PostbackBacklog(Protocol):
    """An account's postbacks as they wait in the outbox: how they stand, and sending them now."""

    async def postback_backlog(self, account_id: str, *, failing: int = 20) -> AccountBacklog:
        """How the account's postbacks stand, with at most ``failing`` of the failing ones (oldest first)."""
        ...

    async def retry_postbacks(self, account_id: str) -> tuple[int, int]:
        """Make the account's failed postbacks and those waiting for a later retry due now: (failed,
        waiting) made due. A failed one gets one more attempt (and is failed again if that fails); a
        waiting one keeps its remaining retries. Postbacks being sent are left alone."""
        ...


class Incoming(Protocol):
    """MMS handsets send to an account's number, and requests a carrier posted, kept before answering."""

    async def number_owner(self, number: str) -> SenderNumber | None:
        """The account number ``number`` is, if any."""
        ...

    async def receive_inbound(self, inbound: Inbound, postback: Outgoing | None) -> None:
        """Store an inbound MMS with its parts and its N401 postback, together."""
        ...

    async def find_inbound(self, token: str) -> Inbound:
        """An inbound MMS (with its parts) by the token of its content URLs."""
        ...

    async def keep_request(self, connection: str, dedupe: str, kind: str, sha256: str, content_type: str) -> bool:
        """Keep a request a carrier posted (its body in the blob store) with the job that handles it; False
        (nothing done) when the connection's request ``dedupe`` came before."""
        ...

    async def kept_request(self, connection: str, dedupe: str) -> tuple[str, str, str]:
        """A kept request: (kind, sha256 of its body, its Content-Type)."""
        ...


class Connections(Protocol):
    """Named carrier and SMS connections; names are unique over every kind."""

    async def add_connection(self, name: str, kind: str, config: dict[str, object]) -> Connection: ...

    async def list_connections(self, kind: str | None = None) -> list[Connection]:
        """The configured connections (of one kind), by name."""
        ...

    async def remove_connection(self, name: str, kind: str | None = None) -> None:
        """Remove a connection (only if it is of ``kind``, when given)."""
        ...


class SandboxState(Protocol):
    """The sandbox carrier's virtual handsets: how each behaves, what it received and sent."""

    async def set_handset(self, handset: Handset) -> None: ...

    async def get_handset(self, number: str) -> Handset:
        """The handset's settings; a number never configured delivers at once."""
        ...

    async def sandbox_submit(self, submission: SandboxSubmission) -> SandboxSubmission:
        """Record what the sandbox received, with its report job when one is due and, when the handset
        delivers, the MMS in its inbox from the report's time on; a repeated submission id is counted
        (``calls``) and the first record returned."""
        ...

    async def sandbox_submission(self, key: str) -> SandboxSubmission | None:
        """A submission by its submission id or by the carrier message id."""
        ...

    async def sandbox_inbox(self, number: str, limit: int = 100) -> list[tuple[str, str, datetime]]:
        """A handset's inbox, newest first: (carrier message id, MMS JSON, delivered at), of what it has
        received by now."""
        ...

    async def sandbox_sms_receive(self, sms: SandboxSms) -> None:
        """Put an SMS in a handset's inbox."""
        ...

    async def sandbox_sms_inbox(self, number: str, limit: int = 100) -> list[SandboxSms]:
        """A handset's SMS, newest first."""
        ...

    async def sandbox_sms_sent(self, tracking_id: str) -> list[str]:
        """The ids of the sandbox SMS sent for a message (to reconcile after a crash)."""
        ...

    async def known_handsets(self, limit: int = 200) -> list[KnownHandset]:
        """Handsets with settings, received MMS or SMS, or sent MMS; the most recently active first."""
        ...

    async def sent_by(self, number: str, limit: int = 50) -> list[Inbound]:
        """The MMS a handset sent (inbound to an account's number), newest first, with their parts."""
        ...


class ConsoleState(Protocol):
    """What the web console keeps and lists."""

    async def console_messages(self, query: MessageQuery, limit: int) -> list[Message]:
        """A page of messages, newest first (by created_at, then tracking id), after ``query.before``."""
        ...

    async def console_postbacks(self, subject_id: str) -> list[PostbackRecord]:
        """A message's or template's postbacks, oldest first, each with its delivery attempts."""
        ...

    async def console_last_events(self, subject_ids: Sequence[str]) -> dict[str, Event]:
        """The latest event of each message or template named (none for one without events)."""
        ...

    async def console_templates(self, account_id: str | None = None, limit: int = 200) -> list[Template]:
        """Templates, newest first (of one account, when given)."""
        ...

    async def console_password_hash(self) -> str | None:
        """The console password, as stored (scrypt); None before one was set."""
        ...

    async def set_console_password(self, password_hash: str, *, only_if_unset: bool = False) -> bool:
        """Store the console password and end every console session, together; with ``only_if_unset``
        nothing changes if a password exists already (False)."""
        ...

    async def create_console_session(self, token_hash: str, expires_at: datetime) -> None: ...

    async def console_session(self, token_hash: str, now: datetime) -> datetime | None:
        """When the session ends; None if there is no such session or it has ended."""
        ...

    async def end_console_session(self, token_hash: str) -> None: ...

    async def add_console_upload(self, upload: ConsoleUpload) -> None: ...

    async def console_upload(self, token_hash: str) -> ConsoleUpload | None:
        """An uploaded file by the hash of its URL's token (expired ones too: the caller checks)."""
        ...


class Values(Protocol):
    """Gateway-wide values, such as the public URL a running gateway announced."""

    async def get_value(self, name: str) -> str | None: ...

    async def set_value(self, name: str, value: str) -> None: ...


class SendWindows(Protocol):
    """Throughput windows of carriers and connections, shared by every process."""

    async def reserve_sends(self, carrier: str, limit: int, window: float, want: int) -> tuple[int, float]:
        """Take up to ``want`` of the ``limit`` sends a carrier may have in any ``window`` seconds, across
        every process. Returns how many were granted, and when none was, the seconds until one frees."""
        ...


class Retention(Protocol):
    """Deleting what is over."""

    async def prune(self, finished_before: datetime, now: datetime, *, batch: int = 1000) -> dict[str, int]:
        """Delete jobs done and postbacks ended before ``finished_before``, sandbox records, SMS segment ids
        and receipts older than it, and inbound MMS and hosted pages whose content expired by ``now``.
        Messages, templates and their events stay (they are the account's history). Returns the counts."""
        ...


class Blobs(Protocol):
    """Content-addressed files, stored once by SHA-256. Blocking: call from a thread."""

    def put(self, data: bytes) -> str:
        """Store ``data``; its SHA-256 (hex), which names it."""
        ...

    def get(self, sha256: str) -> bytes:
        """The file named ``sha256``; ``FileNotFoundError`` if this store has none."""
        ...

    def path(self, sha256: str) -> Path:
        """Where the file named ``sha256`` is on this machine's disk (served from there)."""
        ...

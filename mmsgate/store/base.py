"""The Store: a narrow interface of domain operations. No SQL leaves ``mmsgate.store``.

Every backend passes the same suite (``tests/integration/test_store.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mmsgate.core.codes import JobKind, TemplateState
from mmsgate.core.model import (
    Account,
    AccountConfig,
    ApiKey,
    Behaviour,
    BlockedNumber,
    Campaign,
    Connection,
    Event,
    Handset,
    HostedPage,
    Inbound,
    Job,
    Message,
    NumberKind,
    Outgoing,
    Part,
    PostbackDelivery,
    SandboxSms,
    SandboxSubmission,
    SenderNumber,
    SmsSegmentState,
    Step,
    Template,
)
from mmsgate.sms.base import SmsReceipt


class Store(abc.ABC):
    """Durable state of the gateway. Methods raise :class:`mmsgate.errors.StoreError` subclasses."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and start background writers. Does not migrate."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush pending group commits and disconnect."""

    async def watch_jobs(self, listener: Callable[[], None]) -> None:  # noqa: B027 - one process needs none
        """Call ``listener`` when another process commits new jobs (PostgreSQL: LISTEN/NOTIFY), so
        workers claim them at once rather than at their next poll. By default nothing is watched."""

    @abc.abstractmethod
    def on_outbox(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Call ``listener`` with the accounts of the postbacks that this process commits to the outbox
        (to send them at once rather than at the sender's next poll)."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; return the ids applied."""

    # accounts -----------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_account(self, name: str) -> Account: ...

    @abc.abstractmethod
    async def get_account(self, account_id: str) -> Account: ...

    @abc.abstractmethod
    async def list_accounts(self) -> list[Account]: ...

    @abc.abstractmethod
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

    @abc.abstractmethod
    async def delete_account(self, account_id: str) -> None:
        """Remove the account with its keys, campaigns, numbers and blocks; messages stay for audit."""

    @abc.abstractmethod
    async def account_config(self, account_id: str) -> AccountConfig: ...

    # keys -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_key(self, account_id: str) -> tuple[ApiKey, str]:
        """Create a key; return it as stored and the secret key, which is never stored nor shown again."""

    @abc.abstractmethod
    async def list_keys(self, account_id: str) -> list[ApiKey]: ...

    @abc.abstractmethod
    async def revoke_key(self, key_id: str) -> None: ...

    @abc.abstractmethod
    async def delete_key(self, key_id: str) -> None:
        """Remove a key for good (revoking keeps it listed)."""

    @abc.abstractmethod
    async def authenticate(self, api_key: str) -> tuple[ApiKey, Account] | None:
        """Find the key (by its hash) and its account; None if there is no such key."""

    # campaigns, numbers, blocks -------------------------------------------------------------------
    @abc.abstractmethod
    async def create_campaign(self, account_id: str, postback_url: str | None = None) -> Campaign: ...

    @abc.abstractmethod
    async def list_campaigns(self, account_id: str) -> list[Campaign]: ...

    @abc.abstractmethod
    async def delete_campaign(self, service_id: str) -> None: ...

    @abc.abstractmethod
    async def add_number(
        self, account_id: str, number: str, kind: NumberKind, service_id: str | None = None
    ) -> SenderNumber: ...

    @abc.abstractmethod
    async def list_numbers(self, account_id: str) -> list[SenderNumber]: ...

    @abc.abstractmethod
    async def remove_number(self, number: str) -> None: ...

    @abc.abstractmethod
    async def block_number(self, account_id: str, number: str) -> BlockedNumber: ...

    @abc.abstractmethod
    async def list_blocked(self, account_id: str) -> list[BlockedNumber]: ...

    @abc.abstractmethod
    async def unblock_number(self, account_id: str, number: str) -> None: ...

    # messages and templates -----------------------------------------------------------------------
    @abc.abstractmethod
    async def accept_message(self, message: Message) -> None:
        """Commit the message and the job that continues it, together (its acceptance is its first event).

        Concurrent calls are committed in one transaction (group commit); each call returns only
        after its own commit."""

    @abc.abstractmethod
    async def accept_template(self, template: Template) -> None:
        """Commit the template (processing) and its preparation job together."""

    @abc.abstractmethod
    async def get_message(self, account_id: str, tracking_id: str) -> Message: ...

    @abc.abstractmethod
    async def get_template(self, account_id: str, mms_id: str) -> Template: ...

    @abc.abstractmethod
    async def set_template_state(
        self, mms_id: str, state: TemplateState, *, code: str | None, details: str, postback: Outgoing | None = None
    ) -> None:
        """Move a template to a new state and record the event that says why (and its postback)."""

    @abc.abstractmethod
    async def list_events(self, subject_id: str) -> list[Event]:
        """A message's or template's events after its acceptance, oldest first (acceptance is the row itself)."""

    @abc.abstractmethod
    async def message_ids(self, tracking_ids: Sequence[str]) -> dict[str, int]:
        """How many stored messages have each of the given tracking ids (audits and tests)."""

    # media outcomes -------------------------------------------------------------------------------
    @abc.abstractmethod
    async def find_message(self, tracking_id: str) -> Message:
        """A message by tracking id, whatever its account (workers)."""

    @abc.abstractmethod
    async def find_template(self, mms_id: str) -> Template:
        """A template by id, whatever its account (workers)."""

    @abc.abstractmethod
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

    @abc.abstractmethod
    async def template_ready(
        self, mms_id: str, parts: Sequence[Part], *, details: str, postback: Outgoing | None = None
    ) -> bool:
        """Store a processing template's prepared parts and make it ready (N003), together."""

    @abc.abstractmethod
    async def advance(self, step: Step) -> bool:
        """Apply one lifecycle transition with its event and postback, if the message is in one of the
        target's source states; False (nothing changed) otherwise. Committed with concurrent ones."""

    @abc.abstractmethod
    async def list_parts(self, owner_id: str) -> list[Part]:
        """A message's or template's prepared parts, in order."""

    # jobs -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def claim_jobs(
        self, owner: str, *, limit: int, lease_seconds: float, kinds: Sequence[JobKind] | None = None
    ) -> list[Job]:
        """Atomically lease up to ``limit`` due jobs (queued and due, or running with an expired lease).

        No two claimers ever hold the same job at once."""

    @abc.abstractmethod
    async def extend_leases(self, job_ids: Sequence[int], owner: str, *, lease_seconds: float) -> set[int]:
        """Keep holding jobs that are still running; the ids whose lease ``owner`` still held."""

    @abc.abstractmethod
    async def finish_job(self, job_id: int, owner: str) -> bool:
        """Mark a job done; False if ``owner`` no longer holds its lease."""

    @abc.abstractmethod
    async def retry_job(self, job_id: int, owner: str, *, run_at: datetime, error: str | None) -> bool:
        """Release a job to run again at ``run_at`` (``error`` None: it is waiting, not failing);
        False if ``owner`` no longer holds its lease."""

    # delivery -------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def find_by_carrier_id(self, carrier: str, carrier_message_id: str) -> Message:
        """The message a carrier knows by this id (delivery reports)."""

    @abc.abstractmethod
    async def postback_target(self, account_id: str, service_id: str | None) -> str | None:
        """Where an account's postbacks go: the campaign's URL, else the account's, else None."""

    @abc.abstractmethod
    async def reserve_sends(self, carrier: str, limit: int, window: float, want: int) -> tuple[int, float]:
        """Take up to ``want`` of the ``limit`` sends a carrier may have in any ``window`` seconds, across
        every process. Returns how many were granted, and when none was, the seconds until one frees."""

    @abc.abstractmethod
    async def get_value(self, name: str) -> str | None:
        """A gateway-wide value (such as the public URL a running gateway announced)."""

    @abc.abstractmethod
    async def set_value(self, name: str, value: str) -> None: ...

    @abc.abstractmethod
    async def prune(self, finished_before: datetime, now: datetime, *, batch: int = 1000) -> dict[str, int]:
        """Delete what is over: jobs done and postbacks ended before ``finished_before``, sandbox
        submissions, inbox entries and SMS older than it, SMS segment ids and receipts older than it,
        and inbound MMS and hosted pages whose content expired by ``now``.
        Messages, templates and their events stay (they are the account's history). Returns the counts."""

    # postback outbox ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def claim_postbacks(
        self, owner: str, *, limit: int, lease_seconds: float, skip_accounts: Sequence[str] = ()
    ) -> list[PostbackDelivery]:
        """Lease due postbacks, oldest first, never one whose message has an earlier postback still
        pending (a message's postbacks arrive in order), and none of ``skip_accounts``."""

    @abc.abstractmethod
    async def postback_done(self, postback_id: int, owner: str, *, delivered: bool, error: str | None) -> bool:
        """End a postback: delivered, or given up after its last attempt."""

    @abc.abstractmethod
    async def postback_retry(self, postback_id: int, owner: str, *, run_at: datetime, error: str) -> bool: ...

    @abc.abstractmethod
    async def list_postbacks(self, subject_id: str) -> list[tuple[str, str, str, int]]:
        """A subject's postbacks, oldest first: (event id, code, state, attempts)."""

    # sandbox carrier ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def set_handset(self, handset: Handset) -> None: ...

    @abc.abstractmethod
    async def get_handset(self, number: str) -> Handset:
        """The handset's settings; a number never configured delivers at once."""

    @abc.abstractmethod
    async def sandbox_submit(self, submission: SandboxSubmission) -> SandboxSubmission:
        """Record what the sandbox received, with its report job when one is due and, when the handset
        delivers, the MMS in its inbox from the report's time on; a repeated submission id is counted
        (``calls``) and the first record returned."""

    @abc.abstractmethod
    async def sandbox_submission(self, key: str) -> SandboxSubmission | None:
        """A submission by its submission id or by the carrier message id."""

    @abc.abstractmethod
    async def sandbox_inbox(self, number: str, limit: int = 100) -> list[tuple[str, str, datetime]]:
        """A handset's inbox, newest first: (carrier message id, MMS JSON, delivered at), of what it has
        received by now."""

    # inbound --------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def number_owner(self, number: str) -> SenderNumber | None: ...

    @abc.abstractmethod
    async def receive_inbound(self, inbound: Inbound, postback: Outgoing | None) -> None:
        """Store an inbound MMS with its parts and its N401 postback, together."""

    @abc.abstractmethod
    async def find_inbound(self, token: str) -> Inbound:
        """An inbound MMS (with its parts) by the token of its content URLs."""

    # MM7 VASP endpoint ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def mm7_receive(self, connection: str, dedupe: str, kind: str, sha256: str, content_type: str) -> bool:
        """Keep a request an MMSC posted (its body in the blob store) with the job that handles it; False
        (nothing done) when the connection's request ``dedupe`` came before."""

    @abc.abstractmethod
    async def mm7_request(self, connection: str, dedupe: str) -> tuple[str, str, str]:
        """A kept request: (kind, sha256 of its body, its Content-Type)."""

    @abc.abstractmethod
    async def record_event(self, tracking_id: str, status: str, details: str) -> None:
        """An event on a message that changes nothing else (a read reply, say)."""

    # SMS fallback ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_hosted_page(self, tracking_id: str, code: str, expires_at: datetime) -> HostedPage:
        """The message's hosted page: created with ``code`` the first time, the existing one after."""

    @abc.abstractmethod
    async def find_hosted_page(self, code: str) -> HostedPage: ...

    @abc.abstractmethod
    async def sms_submitted(self, step: Step, connector: str, message_ids: Sequence[str]) -> bool:
        """Apply ``step`` (to sms-submitted) and record the SMSC's id of each segment, together."""

    @abc.abstractmethod
    async def record_sms_receipt(self, receipt: SmsReceipt) -> str | None:
        """Keep a receipt (a final one replaces an en-route one); the tracking id of the message whose
        segment it is, None if no segment is known by that id (yet)."""

    @abc.abstractmethod
    async def sms_segments(self, tracking_id: str) -> list[SmsSegmentState]:
        """A message's SMS segments in order, each with its receipt once one came."""

    @abc.abstractmethod
    async def add_connection(self, name: str, kind: str, config: dict[str, object]) -> Connection:
        """A named carrier or SMS connection (``mm7``, ``smpp``); names are unique over every kind."""

    @abc.abstractmethod
    async def list_connections(self, kind: str | None = None) -> list[Connection]:
        """The configured connections (of one kind), by name."""

    @abc.abstractmethod
    async def remove_connection(self, name: str, kind: str | None = None) -> None:
        """Remove a connection (only if it is of ``kind``, when given)."""

    @abc.abstractmethod
    async def sandbox_sms_receive(self, sms: SandboxSms) -> None:
        """Put an SMS in a sandbox handset's inbox."""

    @abc.abstractmethod
    async def sandbox_sms_inbox(self, number: str, limit: int = 100) -> list[SandboxSms]:
        """A sandbox handset's SMS, newest first."""

    @abc.abstractmethod
    async def sandbox_sms_sent(self, tracking_id: str) -> list[str]:
        """The ids of the sandbox SMS sent for a message (to reconcile after a crash)."""

    # console --------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def postback_attempted(self, attempt: PostbackAttempt, owner: str, *, retry_at: datetime | None) -> bool:
        """End one delivery attempt of a claimed postback and record it (time, HTTP status or error),
        together: delivered when the attempt succeeded, else queued again at ``retry_at``, or failed for
        good when there is none. False (nothing recorded) if ``owner`` no longer holds the lease."""

    @abc.abstractmethod
    async def console_messages(self, query: MessageQuery, limit: int) -> list[Message]:
        """A page of messages, newest first (by created_at, then tracking id), after ``query.before``."""

    @abc.abstractmethod
    async def console_postbacks(self, subject_id: str) -> list[PostbackRecord]:
        """A message's or template's postbacks, oldest first, each with its delivery attempts."""

    @abc.abstractmethod
    async def console_templates(self, account_id: str | None = None, limit: int = 200) -> list[Template]:
        """Templates, newest first (of one account, when given)."""

    @abc.abstractmethod
    async def console_handsets(self, limit: int = 200) -> list[KnownHandset]:
        """Sandbox handsets with settings, received MMS or SMS, or sent MMS; the most recently active first."""

    @abc.abstractmethod
    async def console_sent_by(self, number: str, limit: int = 50) -> list[Inbound]:
        """The MMS a handset sent (inbound to an account's number), newest first, with their parts."""

    @abc.abstractmethod
    async def console_password_hash(self) -> str | None:
        """The console password, as stored (scrypt); None before one was set."""

    @abc.abstractmethod
    async def set_console_password(self, password_hash: str, *, only_if_unset: bool = False) -> bool:
        """Store the console password and end every console session, together; with ``only_if_unset``
        nothing changes if a password exists already (False)."""

    @abc.abstractmethod
    async def create_console_session(self, token_hash: str, expires_at: datetime) -> None: ...

    @abc.abstractmethod
    async def console_session(self, token_hash: str, now: datetime) -> datetime | None:
        """When the session ends; None if there is no such session or it has ended."""

    @abc.abstractmethod
    async def end_console_session(self, token_hash: str) -> None: ...

    @abc.abstractmethod
    async def add_console_upload(self, upload: ConsoleUpload) -> None: ...

    @abc.abstractmethod
    async def console_upload(self, token_hash: str) -> ConsoleUpload | None:
        """An uploaded file by the hash of its URL's token (expired ones too: the caller checks)."""


# console records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostbackAttempt:
    """One POST of a postback: when it started, how long it took, the HTTP status (None when no answer
    came) and what went wrong (None when delivered)."""

    postback_id: int
    subject_id: str
    attempt: int
    at: datetime
    elapsed: float
    http_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class PostbackRecord:
    """A postback of the outbox as the console shows it."""

    event_id: str
    code: str
    url: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    tries: tuple[PostbackAttempt, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Which messages a console page lists: every filter is optional; ``before`` is the (created_at,
    tracking id) of the last message of the previous page."""

    state: str | None = None
    number: str | None = None
    """The recipient's or the sender's number."""
    account_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive."""
    before: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class KnownHandset:
    """A sandbox handset the console lists: its settings, what it holds, and when it was last active."""

    number: str
    behaviour: Behaviour
    delay: float
    received: int
    sent: int
    last_active: datetime


@dataclass(frozen=True, slots=True)
class ConsoleUpload:
    """A file uploaded in the console for a test send; its bytes are in the blob store."""

    token_hash: str
    sha256: str
    content_type: str
    name: str
    size: int
    created_at: datetime
    expires_at: datetime

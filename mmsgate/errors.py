"""One error tree for mmsgate.

    MmsgateError
     ├── ApiError            a contract failure answered to an API client (carries its E-code)
     ├── ConfigError         settings that cannot work
     ├── MediaError          a slide's content could not be fetched, is not what it claims, or cannot fit
     ├── WorkerCrashed       a media worker process died under a job (retryable)
     ├── CarrierError        a carrier did not take a message (carries the carrier's own status code)
     │    ├── CarrierRejected   it refused the message for good (E102), e.g. not MMS capable
     │    └── CarrierBusy       throttled or unreachable; it certainly did not take it (retryable)
     ├── NotYet              the work depends on a step not yet recorded; try again shortly (retryable)
     ├── InboundRefused      an inbound MMS the gateway cannot take (to no account's number, empty, too large)
     └── StoreError          the store could not do what was asked
          ├── NotFound       the named row does not exist (or belongs to another account)
          ├── Conflict       the row already exists
          └── StoreUnavailable  the database could not be reached or failed (retryable)

Errors from libraries are translated where they enter (``raise StoreUnavailable(...) from exc``);
only ``mmsgate.api`` turns errors into API answers.
"""

from __future__ import annotations

from mmsgate.core.codes import ErrorCode


class MmsgateError(Exception):
    """Base of every error mmsgate raises on purpose."""

    retryable: bool = False


class ApiError(MmsgateError):
    """A request broke a rule of the contract; answered as ``{"status": "failure", ...}``."""

    def __init__(self, code: ErrorCode, info: str) -> None:
        super().__init__(f"{code.value}: {info}")
        self.code = code
        self.info = info


class ConfigError(MmsgateError):
    """A setting has a value mmsgate cannot work with."""


class MediaError(MmsgateError):
    """A slide's media failed; ``code`` is the contract's E3xx / E629 code for the reason."""

    def __init__(self, code: str, detail: str, *, retryable: bool = False, kind: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.kind = kind
        """The slide kind (image, audio, ...) whose media failed, once known."""

    def __reduce__(self) -> tuple[object, ...]:
        # raised in media worker processes and pickled back: keep every field (the default pickling
        # rebuilds from ``args`` alone, and a result that cannot be unpickled breaks the whole pool)
        return (_media_error, (self.code, self.detail, self.retryable, self.kind))


def _media_error(code: str, detail: str, retryable: bool, kind: str | None) -> MediaError:
    return MediaError(code, detail, retryable=retryable, kind=kind)


class WorkerCrashed(MmsgateError):
    """A media worker process died (a decoder crash, or killed for memory); the work may be tried again."""

    retryable = True


class CarrierError(MmsgateError):
    """A carrier did not take a message. ``status`` is the carrier's own code (MM7 StatusCode, SMPP
    command_status, sandbox behaviour); ``definite`` says the carrier certainly did not take it (so a
    retry cannot send twice); ``retryable`` says whether trying again can succeed."""

    def __init__(self, status: str, detail: str, *, retryable: bool = False, definite: bool = True) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.retryable = retryable
        self.definite = definite


class CarrierRejected(CarrierError):
    """The carrier refused the message for good; ``not_mms`` when the handset cannot take MMS at all."""

    def __init__(self, status: str, detail: str, *, not_mms: bool = False) -> None:
        super().__init__(status, detail, retryable=False, definite=True)
        self.not_mms = not_mms


class CarrierBusy(CarrierError):
    """Throttled or temporarily unable; the carrier did not take the message."""

    def __init__(self, status: str, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(status, detail, retryable=True, definite=True)
        self.retry_after = retry_after


class NotYet(MmsgateError):
    """Work that depends on a step not yet recorded, or found its message changed under it (a report faster
    than the submit's record is not one: it is kept until that record exists)."""

    retryable = True

    def __init__(self, detail: str, *, retry_after: float = 0.2) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class InboundRefused(MmsgateError):
    """An inbound MMS the gateway cannot take: to no account's number, empty, or too large."""


class StoreError(MmsgateError):
    """The store failed to carry out an operation."""


class NotFound(StoreError):
    """The row asked for does not exist, or is not visible to the caller's account."""


class Conflict(StoreError):
    """The row to create already exists."""


class StoreUnavailable(StoreError):
    """The database is unreachable or failed; the operation may succeed if tried again."""

    retryable = True

"""One error tree for mmsgate.

    MmsgateError
     ├── ApiError            a contract failure answered to an API client (carries its E-code)
     ├── ConfigError         settings that cannot work
     ├── MediaError          a slide's content could not be fetched, is not what it claims, or cannot fit
     ├── WorkerCrashed       a media worker process died under a job (retryable)
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


class StoreError(MmsgateError):
    """The store failed to carry out an operation."""


class NotFound(StoreError):
    """The row asked for does not exist, or is not visible to the caller's account."""


class Conflict(StoreError):
    """The row to create already exists."""


class StoreUnavailable(StoreError):
    """The database is unreachable or failed; the operation may succeed if tried again."""

    retryable = True

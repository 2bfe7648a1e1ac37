"""MM7 versions, namespaces and statuses: the namespace versions the gateway speaks (and the ``MM7Version`` sent
with each), the ``Status`` block, the standard and carrier names of status codes, and what a ``StatusCode``
means for the request that got it (:func:`classify`).

Pure: values in, values out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MM7_NS_BASE = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"

VERSIONS: dict[str, str] = {
    "REL-5-MM7-1-0": "5.3.0",
    "REL-5-MM7-1-1": "5.3.0",
    "REL-5-MM7-1-2": "5.3.0",
    "REL-5-MM7-1-3": "5.3.0",
    "REL-5-MM7-1-4": "5.3.0",
    "REL-5-MM7-1-5": "5.3.0",
    "REL-6-MM7-1-0": "6.8.0",
    "REL-6-MM7-1-1": "6.8.0",
    "REL-6-MM7-1-2": "6.8.0",
    "REL-6-MM7-1-3": "6.8.0",
    "REL-6-MM7-1-4": "6.8.0",
}
"""Namespace version (the last segment of the MM7 namespace URI) → the ``MM7Version`` sent with it."""

DEFAULT_VERSION = "REL-6-MM7-1-4"


def namespace(version: str) -> str:
    """The MM7 namespace URI of a namespace version such as ``REL-6-MM7-1-4``."""
    if version not in VERSIONS:
        raise ValueError(f"unknown MM7 namespace version {version!r}; known: {', '.join(VERSIONS)}")
    return MM7_NS_BASE + version


@dataclass(frozen=True, slots=True)
class Mm7Status:
    """An MM7 ``Status`` block: ``StatusCode``, ``StatusText`` and the optional ``Details``."""

    code: int
    text: str
    details: str | None = None


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    PERMANENT = "permanent"
    """Do not send the same request again: it will fail the same way."""
    RETRYABLE = "retryable"
    """A server or service problem: the same request may succeed later (retry with back-off)."""
    THROTTLED = "throttled"
    """The carrier asks the gateway to slow down: retry later, and send less meanwhile."""


_STATUS_TEXT: dict[int, str] = {
    # 3GPP TS 23.140 (the table Mbuni and every MM7 stack carry)
    1000: "Success",
    1100: "Partial success",
    2000: "Client error",
    2001: "Operation restricted",
    2002: "Address Error",
    2003: "Address Not Found",
    2004: "Multimedia content refused",
    2005: "Message ID Not found",
    2006: "LinkedID not found",
    2007: "Message format corrupt",
    2008: "Application ID not found",
    2009: "Reply Application ID not found",
    3000: "Server Error",
    3001: "Not Possible",
    3002: "Message rejected",
    3003: "Multiple addresses not supported",
    3004: "Application Addressing not supported",
    3005: "Command rejected",
    4000: "General service error",
    4001: "Improper identification",
    4002: "Unsupported version",
    4003: "Unsupported operation",
    4004: "Validation error",
    4005: "Service error",
    4006: "Service unavailable",
    4007: "Service denied",
    4008: "Application denied",
    # Sinch / Skycore additions (their MMS status code tables)
    2400: "Content length exceeded maximum supported request size",
    2404: "Invalid VASPID",
    2408: "Unable to authenticate",
    2505: "Missing or unsupported MM7 Version",
    2507: "Unsupported namespace",
    2510: "Missing or Invalid SOAP header",
    2571: "Group message has no recipient that is not displayOnly",
    2572: "Group message has more than one recipient that is not displayOnly",
    3100: "Throughput exceeded",
    3500: "Timeout",
}

_CLASS_TEXT = {1: "Success", 2: "Client error", 3: "Server Error", 4: "General service error"}

_RETRYABLE = frozenset({3000, 3500, 4000, 4006})
_THROTTLED = frozenset({3100})
_PERMANENT_SERVER = frozenset({3001, 3002, 3003, 3004, 3005, 4001, 4002, 4003, 4004, 4005, 4007, 4008})


def classify(code: int) -> Outcome:
    """What an MM7 ``StatusCode`` means for the request that got it.

    =================================  ===========  ==========================================================
    code                               outcome      why
    =================================  ===========  ==========================================================
    1000 Success, 1100 Partial         SUCCESS      accepted (for a submit: accepted, not yet delivered)
    any other 1xxx                     SUCCESS      the success class
    2000-2009 (TS 23.140)              PERMANENT    client errors: the request itself is wrong
    any other 2xxx (Sinch 2400, 2404,  PERMANENT    carrier-specific client errors (size, credentials,
    2408, 2505, 2507, 2510, 2571/2)                 version, namespace, header, group rules)
    3000 Server Error                  RETRYABLE    a server failure; the same request may succeed later
    3001 Not Possible                  PERMANENT    the MMSC cannot do it (Skycore: number blacklisted)
    3002 Message rejected              PERMANENT    the MMSC refused this message
    3003 Multiple addresses            PERMANENT    needs a different request (one per recipient)
    3004 Application Addressing        PERMANENT    needs a different request
    3005 Command rejected              PERMANENT    the MMSC refused this command
    3100 Throughput exceeded (Sinch)   THROTTLED    "retry later": slow down and retry
    3500 Timeout (Sinch)               RETRYABLE    the carrier's gateway timed out
    any other 3xxx                     RETRYABLE    its class: like 3000, a server error
    4000 General service error         RETRYABLE    a service failure that may pass
    4001 Improper identification       PERMANENT    credentials / VASPID wrong: fix the configuration
    4002 Unsupported version           PERMANENT    configuration: another MM7 version is needed
    4003 Unsupported operation         PERMANENT    the MMSC does not do this operation
    4004 Validation error              PERMANENT    the request does not validate
    4005 Service error                 PERMANENT    TS 23.140: "should not be resent"
    4006 Service unavailable           RETRYABLE    temporarily unavailable (busy, capacity)
    4007 Service denied                PERMANENT    not allowed for this client or address
    4008 Application denied            PERMANENT    not allowed for this application
    any other 4xxx                     RETRYABLE    its class: like 4000, a general service error
    anything outside 1000-4999         PERMANENT    no class to go by; nothing says waiting would help
    =================================  ===========  ==========================================================
    """
    if code in _THROTTLED:
        return Outcome.THROTTLED
    if code in _RETRYABLE:
        return Outcome.RETRYABLE
    if code in _PERMANENT_SERVER:
        return Outcome.PERMANENT
    match code // 1000 if 1000 <= code <= 4999 else 0:
        case 1:
            return Outcome.SUCCESS
        case 3 | 4:
            return Outcome.RETRYABLE
        case _:
            return Outcome.PERMANENT


def status_text(code: int) -> str:
    """The standard (or carrier) name of a status code; an unknown code gets its class's name."""
    known = _STATUS_TEXT.get(code)
    if known is not None:
        return known
    return _CLASS_TEXT.get(code // 1000, "Unknown status") if 1000 <= code <= 4999 else "Unknown status"

"""Phone numbers in the contract: international digits, mobile recipients and the sender (``to``, ``from``).

:func:`normalise_number` is also what the sandbox, the console and the command line use to read a number
as the API would. The recipient must be a possible number under its country code; the answer comes from a
table of phonenumbers' possible lengths, built once per country code, and only unusual numbers are parsed.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from mmsgate.contract.fields import fail, show
from mmsgate.core.codes import ErrorCode
from mmsgate.core.model import AccountConfig

_DIGITS = re.compile(r"[0-9]+")


def normalise_number(value: Any) -> str | None:
    """Digits of a number in international format (a leading + is dropped), or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    digits = value[1:] if value.startswith("+") else value
    if not _DIGITS.fullmatch(digits) or not digits.isascii():
        return None
    return digits


_LENGTHS: dict[int, frozenset[int]] = {}


def _national_lengths(country_code: int) -> frozenset[int]:
    """Possible lengths of national numbers under a country code, from phonenumbers' metadata.

    Built once per country code; empty for a code that is not assigned."""
    lengths = _LENGTHS.get(country_code)
    if lengths is None:
        found: set[int] = set()
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())[:1]:  # the main region
            metadata = (
                phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
                if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
                else phonenumbers.PhoneMetadata.metadata_for_region(region)
            )
            if metadata is not None and metadata.general_desc is not None:
                found.update(metadata.general_desc.possible_length or ())
                found.update(metadata.general_desc.possible_length_local_only or ())
        lengths = _LENGTHS[country_code] = frozenset(found)
    return lengths


def _is_mobile(digits: str) -> bool:
    """``phonenumbers.is_possible_number`` of ``+digits``. The common case (an assigned country code and a
    national number of a possible length) is answered from a table; only the rest is parsed."""
    if digits.startswith("0") or not 7 <= len(digits) <= 15:
        return False
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            if len(digits) - size in _national_lengths(code):
                return True
            break
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse("+" + digits)))
    except phonenumbers.NumberParseException:
        return False


def read_to(data: dict[str, Any], config: AccountConfig | None) -> str:
    """The recipient's digits; without ``config`` (the client's precheck) the blocked numbers are not known."""
    value = data.get("to")
    if value is None:
        raise fail(ErrorCode.INVALID_TO, "to is required: a mobile number with country code")
    digits = normalise_number(value)
    if digits is None or not _is_mobile(digits):
        raise fail(ErrorCode.INVALID_TO, f"to {show(value)} is not a mobile number with country code")
    if config is not None and digits in config.blocked:
        raise fail(ErrorCode.NUMBER_BLOCKED, f"to {digits} is blocked for this account")
    return digits


def read_from(data: dict[str, Any], config: AccountConfig | None, service_id: str) -> str:
    """The sender's digits: a number of the account, allowed for ``service_id``."""
    value = data.get("from")
    if value is None:
        raise fail(ErrorCode.INVALID_FROM, "from is required: a short code, toll-free or 10DLC number")
    digits = normalise_number(value)
    if digits is None or not 3 <= len(digits) <= 15:
        raise fail(ErrorCode.INVALID_FROM, f"from {show(value)} is not a short code, toll-free or 10DLC number")
    if config is None:  # checked without the account: its numbers are the server's to know
        return digits
    if digits not in config.numbers:
        raise fail(ErrorCode.INVALID_FROM, f"from {digits} is not a number of this account")
    if not config.may_send_from(digits, service_id):
        raise fail(ErrorCode.INVALID_FROM, f"from {digits} is not allowed for service-id {service_id}")
    return digits

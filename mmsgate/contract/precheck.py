"""The contract's rules that need no knowledge of the account, for a client to apply before sending.

``mmsgate.client`` runs :func:`precheck` on every request, so a request the server would refuse for one of
these rules is refused before anything is sent, with the E-code and sentence the server would answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mmsgate.contract.actions import check_savemms, mms_id_of
from mmsgate.contract.fields import (
    read_boolean,
    read_client_reference,
    read_fallback_text,
    read_from_mask,
    read_link_expiration,
    read_mms_expiry,
    read_quiet_boolean,
    read_service_id,
    read_subject,
)
from mmsgate.contract.numbers import read_from, read_to
from mmsgate.contract.slides import read_slides


def precheck(data: dict[str, Any], now: datetime) -> None:
    """Apply the rules that need no knowledge of the account (its campaigns, numbers, blocked numbers,
    templates), in the contract's order, raising the :class:`~mmsgate.errors.ApiError` the server would answer.

    ``mmsgate.client`` runs it before sending, so a client and the server always agree on those rules."""
    action = data.get("action")
    action = action.lower() if isinstance(action, str) else action
    if action == "sendmms":
        service_id = read_service_id(data, None)
        read_to(data, None)
        read_from(data, None, service_id)
        read_from_mask(data)
        read_subject(data)
        read_fallback_text(data, read_quiet_boolean(data, "disable-fallback-sms", False))
        read_boolean(data, "disable-fallback-sms-link", False)
        read_boolean(data, "disable-fallback-sms", False)
        read_link_expiration(data, now)
        read_mms_expiry(data, now)
        read_client_reference(data)
        read_boolean(data, "cache-content", True)
        read_slides(data)
    elif action == "savemms":
        check_savemms(data, "", now)
    elif action == "sendsavedmms":
        mms_id_of(data)
        service_id = read_service_id(data, None)
        read_to(data, None)
        read_from(data, None, service_id)
        read_from_mask(data)
        read_subject(data)
        read_link_expiration(data, now)
        read_mms_expiry(data, now)
        read_client_reference(data)

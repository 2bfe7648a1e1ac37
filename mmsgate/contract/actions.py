"""The contract's three actions (sections 2.1-2.3 of the API contract): the body, then each action's fields.

Each action's fields are checked in the order the contract lists them, so that when several rules fail the
first one in the contract's order is the one reported. A check that fails raises
:class:`~mmsgate.errors.ApiError` with the E-code and a sentence naming the field and the problem. The checks
here know the account (its campaigns, numbers and blocked numbers); :mod:`mmsgate.contract.precheck` applies
the same rules without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from mmsgate.contract.fields import (
    ACTIONS,
    MAX_NAME,
    fail,
    one_year_after,
    read_boolean,
    read_client_reference,
    read_fallback_text,
    read_from_mask,
    read_link_expiration,
    read_mms_expiry,
    read_quiet_boolean,
    read_service_id,
    read_string,
    read_subject,
    show,
)
from mmsgate.contract.numbers import read_from, read_to
from mmsgate.contract.slides import mark_repeated_media_keys, read_custom_slides, read_slides
from mmsgate.core.codes import ErrorCode, TemplateState
from mmsgate.core.ids import new_id
from mmsgate.core.model import AccountConfig, Message, Sending, Template

_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed body: its action (lower-cased) and its fields."""

    action: str
    data: dict[str, Any]
    may_hold_nul: bool = False
    """JSON carries a NUL only as the escape \\u0000: without one, no string needs the NUL check."""


def parse_body(body: bytes) -> Request:
    """Decode the body and find the action: E108 for anything but a JSON object, E107 for the action."""
    try:
        data = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise fail(ErrorCode.JSON_PARSING, f"the body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise fail(ErrorCode.JSON_PARSING, "the body must be a JSON object")
    action = data.get("action")
    if action is None:
        raise fail(ErrorCode.ACTION_NOT_ALLOWED, "action is required: sendmms, savemms or sendsavedmms")
    if not isinstance(action, str) or action.lower() not in ACTIONS:
        raise fail(
            ErrorCode.ACTION_NOT_ALLOWED,
            f"action {show(action)} is not allowed: use sendmms, savemms or sendsavedmms",
        )
    return Request(action.lower(), mark_repeated_media_keys(body, data), b"\\u0000" in body)


def check_sendmms(data: dict[str, Any], config: AccountConfig, now: datetime) -> Message:
    """Section 2.1, in the table's order."""
    service_id = read_service_id(data, config)
    to = read_to(data, config)
    sender = read_from(data, config, service_id)
    from_mask = read_from_mask(data)
    subject = read_subject(data)
    disable_fallback = read_quiet_boolean(data, "disable-fallback-sms", False)
    fallback_text = read_fallback_text(data, disable_fallback)
    disable_link = read_boolean(data, "disable-fallback-sms-link", False)
    disable_fallback = read_boolean(data, "disable-fallback-sms", False)
    link_expiration = read_link_expiration(data, now) or one_year_after(now)
    expires_at = read_mms_expiry(data, now)
    client_reference = read_client_reference(data)
    cache_content = read_boolean(data, "cache-content", True)
    slides = read_slides(data)
    return Message(
        tracking_id=new_id(),
        account_id=config.account.id,
        service_id=service_id,
        to=to,
        sender=sender,
        from_mask=from_mask,
        expires_at=expires_at,
        cache_content=cache_content,
        sending=Sending(
            subject=subject,
            fallback_sms_text=fallback_text,
            disable_fallback_sms=disable_fallback,
            disable_fallback_sms_link=disable_link,
            fallback_link_expires_at=link_expiration,
            client_reference=client_reference,
            slides=slides,
        ),
        created_at=now,
    )


def check_savemms(data: dict[str, Any], account_id: str, now: datetime) -> Template:
    """Section 2.2. The fallback text may be left to `sendsavedmms`, so it is not required here."""
    name = read_string(data, "name", ErrorCode.NAME_INVALID, max_len=MAX_NAME, required=True)
    assert name is not None
    subject = read_subject(data)
    fallback_text = read_fallback_text(data, disabled=True)
    disable_fallback = read_boolean(data, "disable-fallback-sms", False)
    disable_link = read_boolean(data, "disable-fallback-sms-link", False)
    link_expiration = read_link_expiration(data, now)
    client_reference = read_client_reference(data)
    slides = read_slides(data)
    return Template(
        mms_id=new_id(),
        tracking_id=new_id(),
        account_id=account_id,
        name=name,
        sending=Sending(
            subject=subject,
            fallback_sms_text=fallback_text,
            disable_fallback_sms=disable_fallback,
            disable_fallback_sms_link=disable_link,
            fallback_link_expires_at=link_expiration,
            client_reference=client_reference,
            slides=slides,
        ),
        created_at=now,
    )


def mms_id_of(data: dict[str, Any]) -> str:
    """Section 2.3's first rule: the template to send (E620 when missing)."""
    value = data.get("mms-id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise fail(ErrorCode.MMS_ID_REQUIRED, "mms-id is required")
    if not isinstance(value, str) or len(value) > 64:
        raise fail(ErrorCode.MMS_ID_UNKNOWN, f"mms-id {show(value)} does not exist")
    return value


def check_template_usable(template: Template) -> None:
    if template.state is TemplateState.PROCESSING:
        raise fail(ErrorCode.TEMPLATE_PROCESSING, f"template {template.mms_id} is still being processed")
    if template.state is TemplateState.FAILED:
        raise fail(ErrorCode.MMS_ID_UNKNOWN, f"template {template.mms_id} failed processing and cannot be sent")


def check_sendsavedmms(data: dict[str, Any], template: Template, config: AccountConfig, now: datetime) -> Message:
    """Section 2.3, after the template is found and usable: request fields override the template's."""
    saved = template.sending
    service_id = read_service_id(data, config)
    to = read_to(data, config)
    sender = read_from(data, config, service_id)
    from_mask = read_from_mask(data)
    subject = read_subject(data)
    disable_fallback = read_quiet_boolean(data, "disable-fallback-sms", saved.disable_fallback_sms)
    given = data.get("fallback-sms-text")
    if given is None or (isinstance(given, str) and not given.strip()):
        given = saved.fallback_sms_text
    fallback_text = read_fallback_text({"fallback-sms-text": given}, disable_fallback)
    disable_fallback = read_boolean(data, "disable-fallback-sms", saved.disable_fallback_sms)
    disable_link = read_boolean(data, "disable-fallback-sms-link", saved.disable_fallback_sms_link)
    link_expiration = read_link_expiration(data, now) or saved.fallback_link_expires_at or one_year_after(now)
    if link_expiration <= now:
        raise fail(
            ErrorCode.INVALID_REQUEST,
            "the template's fallback-sms-link-expiration has passed: give fallback-sms-link-expiration",
        )
    expires_at = read_mms_expiry(data, now)
    client_reference = read_client_reference(data) or saved.client_reference
    slides = read_custom_slides(data, saved.slides)
    return Message(
        tracking_id=new_id(),
        account_id=config.account.id,
        service_id=service_id,
        to=to,
        sender=sender,
        from_mask=from_mask,
        expires_at=expires_at,
        cache_content=True,
        sending=Sending(
            subject=subject if subject is not None else saved.subject,
            fallback_sms_text=fallback_text,
            disable_fallback_sms=disable_fallback,
            disable_fallback_sms_link=disable_link,
            fallback_link_expires_at=link_expiration,
            client_reference=client_reference,
            slides=slides,
        ),
        mms_id=template.mms_id,
        created_at=now,
    )

"""The contract's checks (sections 1, 2 and 6 of the API contract), as pure functions.

Each action's fields are checked in the order the contract lists them, so that when several rules
fail the first one in the contract's order is the one reported. A check that fails raises
:class:`~mmsgate.errors.ApiError` with the E-code and a sentence naming the field and the problem.
JSON ``null`` counts as "not given" for every optional field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import phonenumbers

from mmsgate.core.codes import ErrorCode, TemplateState
from mmsgate.core.ids import new_id
from mmsgate.core.model import AccountConfig, Media, MediaKind, Message, Sending, Slide, Template
from mmsgate.errors import ApiError

MAX_SLIDES = 8
MAX_TEXT = 5000
MAX_SUBJECT = 80
MAX_CLIENT_REFERENCE = 64
MAX_NAME = 255
MAX_FALLBACK_TEXT = 1600
MAX_URL = 2048
MMS_EXPIRY_MAX = timedelta(days=3)
CLOCK_GRACE = timedelta(minutes=1)
ACTIONS = ("sendmms", "savemms", "sendsavedmms")

_OBJECTS = frozenset({MediaKind.CONTACT, MediaKind.CALENDAR, MediaKind.PDF})
_PLAYABLE = frozenset({MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.VIDEO})
_MEDIA_KEYS = {kind.value: kind for kind in MediaKind}
_MEDIA_KEY_SET = frozenset(_MEDIA_KEYS)
_SLIDE_KEYS = frozenset({*_MEDIA_KEYS, "message-text"})
_MASK = re.compile(r"[A-Za-z0-9_-]{1,11}")
_DIGITS = re.compile(r"[0-9]+")
_decoder = msgspec.json.Decoder()
_MEDIA_KEY_PATTERN = re.compile(rb'"(?:image|audio|video|contact|calendar|pdf)"\s*:')


def fail(code: ErrorCode, info: str) -> ApiError:
    return ApiError(code, info)


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
            f"action {_show(action)} is not allowed: use sendmms, savemms or sendsavedmms",
        )
    if _may_repeat_media_keys(body, data):
        data = _mark_repeated_media_keys(body, data)
    return Request(action.lower(), data, b"\\u0000" in body)


# ---------------------------------------------------------------------------------------------
# field helpers


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _string(data: dict[str, Any], field: str, code: ErrorCode, *, max_len: int, required: bool) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise fail(code, f"{field} is required")
        return None
    if not isinstance(value, str):
        raise fail(code, f"{field} must be a string, not {_show(value)}")
    if required and not value.strip():
        raise fail(code, f"{field} must not be empty")
    if len(value) > max_len:
        raise fail(code, f"{field} is {len(value)} characters long; at most {max_len} are allowed")
    return value


def _boolean(data: dict[str, Any], field: str, default: bool) -> bool:
    value = data.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(ErrorCode.INVALID_REQUEST, f"{field} must be true or false, not {_show(value)}")


def _quiet_boolean(data: dict[str, Any], field: str, default: bool) -> bool:
    """The value to decide by before the field's own turn comes (its errors are reported then)."""
    try:
        return _boolean(data, field, default)
    except ApiError:
        return default


def _one_year_after(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def _moment(data: dict[str, Any], field: str, now: datetime, latest: datetime, limit: str) -> datetime | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(ErrorCode.INVALID_REQUEST, f"{field} must be an ISO 8601 date-time string, not {_show(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(
            ErrorCode.INVALID_REQUEST,
            f"{field} {_show(value)} is not an ISO 8601 date-time (e.g. 2026-06-07T12:00:00Z)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        raise fail(ErrorCode.INVALID_REQUEST, f"{field} {value} is not in the future")
    if moment > latest + CLOCK_GRACE:
        raise fail(ErrorCode.INVALID_REQUEST, f"{field} {value} is more than {limit} ahead")
    return moment.astimezone(UTC)


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


def _service_id(data: dict[str, Any], config: AccountConfig | None) -> str:
    value = data.get("service-id")
    if value is None:
        raise fail(ErrorCode.SERVICE_ID_INVALID, "service-id is required")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise fail(ErrorCode.SERVICE_ID_INVALID, f"service-id must be a campaign id, not {_show(value)}")
    if config is not None and value not in config.service_ids:
        raise fail(ErrorCode.SERVICE_ID_INVALID, f"service-id {_show(value)} is not a campaign of this account")
    return value


def _to(data: dict[str, Any], config: AccountConfig | None) -> str:
    value = data.get("to")
    if value is None:
        raise fail(ErrorCode.INVALID_TO, "to is required: a mobile number with country code")
    digits = normalise_number(value)
    if digits is None or not _is_mobile(digits):
        raise fail(ErrorCode.INVALID_TO, f"to {_show(value)} is not a mobile number with country code")
    if config is not None and digits in config.blocked:
        raise fail(ErrorCode.NUMBER_BLOCKED, f"to {digits} is blocked for this account")
    return digits


def _from(data: dict[str, Any], config: AccountConfig | None, service_id: str) -> str:
    value = data.get("from")
    if value is None:
        raise fail(ErrorCode.INVALID_FROM, "from is required: a short code, toll-free or 10DLC number")
    digits = normalise_number(value)
    if digits is None or not 3 <= len(digits) <= 15:
        raise fail(ErrorCode.INVALID_FROM, f"from {_show(value)} is not a short code, toll-free or 10DLC number")
    if config is None:  # checked without the account: its numbers are the server's to know
        return digits
    if digits not in config.numbers:
        raise fail(ErrorCode.INVALID_FROM, f"from {digits} is not a number of this account")
    if not config.may_send_from(digits, service_id):
        raise fail(ErrorCode.INVALID_FROM, f"from {digits} is not allowed for service-id {service_id}")
    return digits


def _from_mask(data: dict[str, Any]) -> str | None:
    value = data.get("from-mask")
    if value is None:
        return None
    if not isinstance(value, str) or not _MASK.fullmatch(value) or value.isdigit():
        raise fail(
            ErrorCode.INVALID_SENDER_MASK,
            f"from-mask {_show(value)} must be 1-11 characters of A-Z, a-z, 0-9, _ or -, not all digits",
        )
    return value


def _fallback_text(data: dict[str, Any], disabled: bool) -> str | None:
    value = data.get("fallback-sms-text")
    if value is not None and not isinstance(value, str):
        raise fail(ErrorCode.FALLBACK_TEXT_REQUIRED, f"fallback-sms-text must be a string, not {_show(value)}")
    if not disabled and (value is None or not value.strip()):
        raise fail(
            ErrorCode.FALLBACK_TEXT_REQUIRED,
            "fallback-sms-text is required unless disable-fallback-sms is true",
        )
    if value is not None and len(value) > MAX_FALLBACK_TEXT:
        raise fail(
            ErrorCode.INVALID_REQUEST,
            f"fallback-sms-text is {len(value)} characters long; at most {MAX_FALLBACK_TEXT} are allowed",
        )
    return value


def _link_expiration(data: dict[str, Any], now: datetime) -> datetime | None:
    return _moment(data, "fallback-sms-link-expiration", now, _one_year_after(now), "1 year")


def _mms_expiry(data: dict[str, Any], now: datetime) -> datetime:
    moment = _moment(data, "mms-expiry-timestamp", now, now + MMS_EXPIRY_MAX, "3 days")
    return moment or now + MMS_EXPIRY_MAX


def _client_reference(data: dict[str, Any]) -> str | None:
    return _string(data, "client-reference", ErrorCode.INVALID_REQUEST, max_len=MAX_CLIENT_REFERENCE, required=False)


# ---------------------------------------------------------------------------------------------
# slides


class _RepeatedKeys(dict[str, Any]):
    """A JSON object in which a media key appeared more than once (the last value is kept).

    A type of its own, not a marker key, so that no client can forge it."""

    repeated: str = ""


def _may_repeat_media_keys(body: bytes, data: dict[str, Any]) -> bool:
    """Cheap test whether a slide could carry a media key twice (JSON objects may repeat keys)."""
    slides = data.get("slide")
    if not isinstance(slides, list):
        return False
    if b"\\u" in body:  # an escaped key ("im\\u0061ge") does not show in the count below
        return True
    seen = sum(len(s.keys() & _MEDIA_KEY_SET) for s in slides if isinstance(s, dict))
    return len(_MEDIA_KEY_PATTERN.findall(body)) > seen


def _mark_repeated_media_keys(body: bytes, data: dict[str, Any]) -> dict[str, Any]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        repeated = next((k for k in _MEDIA_KEYS if keys.count(k) > 1), None)
        if repeated is None:
            return dict(items)
        out = _RepeatedKeys(items)
        out.repeated = repeated
        return out

    try:
        parsed: dict[str, Any] = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return data
    return parsed


_VALID_MEDIA = frozenset(
    frozenset(c)
    for c in [("image",), ("audio",), ("video",), ("contact",), ("calendar",), ("pdf",), ("image", "audio")]
)


def _slide(n: int, value: Any) -> Slide:
    """One slide. Valid slides take a short path; anything else is judged rule by rule, in order."""
    if type(value) is dict and value.keys() <= _SLIDE_KEYS:
        text = value.get("message-text")
        media_keys = [key for key in value if key != "message-text"]
        if (
            (text is None or (type(text) is str and 0 < len(text) <= MAX_TEXT))
            and (text or media_keys)
            and (not media_keys or frozenset(media_keys) in _VALID_MEDIA)
        ):
            media = []
            for key in media_keys:
                url = _plain_url(value[key])
                if url is None:
                    break
                media.append(Media(_MEDIA_KEYS[key], url))
            else:
                return Slide(text=text, media=tuple(media))
    return _judge_slide(n, value)


def _plain_url(value: Any) -> str | None:
    url = value.get("url") if type(value) is dict else None
    return url if type(url) is str and len(url) <= MAX_URL and _is_http_url(url) else None


def _judge_slide(n: int, value: Any) -> Slide:
    if not isinstance(value, dict):
        raise fail(ErrorCode.INVALID_REQUEST, f"slide {n} must be an object, not {_show(value)}")
    text = value.get("message-text")
    if text is not None:
        if not isinstance(text, str):
            raise fail(ErrorCode.INVALID_REQUEST, f"slide {n}: message-text must be a string, not {_show(text)}")
        if len(text) > MAX_TEXT:
            raise fail(
                ErrorCode.TEXT_TOO_LONG,
                f"slide {n}: message-text is {len(text)} characters long; at most {MAX_TEXT} are allowed",
            )
    kinds = [_MEDIA_KEYS[k] for k in value if k in _MEDIA_KEYS and value[k] is not None]
    if not text and not kinds and all(k in _SLIDE_KEYS for k in value):
        raise fail(ErrorCode.SLIDE_EMPTY, f"slide {n} is empty: give message-text or a media object")
    present = set(kinds)
    if MediaKind.VIDEO in present and MediaKind.IMAGE in present:
        raise fail(ErrorCode.VIDEO_WITH_IMAGE, f"slide {n}: video cannot go with image on one slide")
    if MediaKind.VIDEO in present and MediaKind.AUDIO in present:
        raise fail(ErrorCode.AUDIO_WITH_VIDEO, f"slide {n}: audio cannot go with video on one slide")
    objects = present & _OBJECTS
    if objects and present & _PLAYABLE:
        raise fail(
            ErrorCode.SLIDE_MEDIA_WITH_OBJECT,
            f"slide {n}: {', '.join(sorted(objects))} cannot go with image, audio or video on one slide",
        )
    if len(objects) > 1:
        raise fail(
            ErrorCode.SLIDE_ONE_OBJECT,
            f"slide {n}: at most one of contact, calendar and pdf per slide ({', '.join(sorted(objects))} given)",
        )
    if isinstance(value, _RepeatedKeys):
        raise fail(ErrorCode.SLIDE_ONE_OBJECT, f"slide {n}: {value.repeated} is given twice (same MIME type twice)")
    for key in value:
        if key not in _SLIDE_KEYS:
            raise fail(
                ErrorCode.CONTENT_NOT_ALLOWED,
                f"slide {n}: {_show(key)} is not allowed content "
                "(use message-text, image, audio, video, contact, calendar or pdf)",
            )
    return Slide(text=text, media=tuple(Media(kind, _url(n, kind, value[kind.value])) for kind in kinds))


def _url(n: int, kind: MediaKind, value: Any) -> str:
    url = value.get("url") if isinstance(value, dict) else None
    if not isinstance(url, str) or len(url) > MAX_URL or not _is_http_url(url):
        raise fail(
            ErrorCode.INVALID_REQUEST,
            f'slide {n}: {kind.value} needs {{"url": "http(s)://..."}} with a usable URL, not {_show(value)}',
        )
    return url


_HTTP_URL = re.compile(r"(?i)https?://(?:[^/?#@]*@)?[^/?#@]+(?:[/?#].*)?", re.S)


def _is_http_url(url: str) -> bool:
    return _HTTP_URL.fullmatch(url) is not None and url.isprintable() and " " not in url


def _slides(data: dict[str, Any]) -> tuple[Slide, ...]:
    value = data.get("slide")
    if value is None:
        raise fail(ErrorCode.NO_SLIDES, "slide is required: at least one slide")
    if not isinstance(value, list):
        raise fail(ErrorCode.INVALID_REQUEST, f"slide must be an array of slide objects, not {_show(value)}")
    if not value:
        raise fail(ErrorCode.NO_SLIDES, "slide is empty: at least one slide is required")
    if len(value) > MAX_SLIDES:
        raise fail(ErrorCode.TOO_MANY_SLIDES, f"slide has {len(value)} slides; at most {MAX_SLIDES} are allowed")
    return tuple(_slide(n, s) for n, s in enumerate(value, 1))


# ---------------------------------------------------------------------------------------------
# actions


def check_sendmms(data: dict[str, Any], config: AccountConfig, now: datetime) -> Message:
    """Section 2.1, in the table's order."""
    service_id = _service_id(data, config)
    to = _to(data, config)
    sender = _from(data, config, service_id)
    from_mask = _from_mask(data)
    subject = _string(data, "message-subject", ErrorCode.SUBJECT_INVALID, max_len=MAX_SUBJECT, required=False)
    disable_fallback = _quiet_boolean(data, "disable-fallback-sms", False)
    fallback_text = _fallback_text(data, disable_fallback)
    disable_link = _boolean(data, "disable-fallback-sms-link", False)
    disable_fallback = _boolean(data, "disable-fallback-sms", False)
    link_expiration = _link_expiration(data, now) or _one_year_after(now)
    expires_at = _mms_expiry(data, now)
    client_reference = _client_reference(data)
    cache_content = _boolean(data, "cache-content", True)
    slides = _slides(data)
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
    name = _string(data, "name", ErrorCode.NAME_INVALID, max_len=MAX_NAME, required=True)
    assert name is not None
    subject = _string(data, "message-subject", ErrorCode.SUBJECT_INVALID, max_len=MAX_SUBJECT, required=False)
    fallback_text = _fallback_text(data, disabled=True)
    disable_fallback = _boolean(data, "disable-fallback-sms", False)
    disable_link = _boolean(data, "disable-fallback-sms-link", False)
    link_expiration = _link_expiration(data, now)
    client_reference = _client_reference(data)
    slides = _slides(data)
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
        raise fail(ErrorCode.MMS_ID_UNKNOWN, f"mms-id {_show(value)} does not exist")
    return value


def check_template_usable(template: Template) -> None:
    if template.state is TemplateState.PROCESSING:
        raise fail(ErrorCode.TEMPLATE_PROCESSING, f"template {template.mms_id} is still being processed")
    if template.state is TemplateState.FAILED:
        raise fail(ErrorCode.MMS_ID_UNKNOWN, f"template {template.mms_id} failed processing and cannot be sent")


def _custom_slides(data: dict[str, Any], slides: tuple[Slide, ...]) -> tuple[Slide, ...]:
    value = data.get("custom-slides")
    if value is None:
        return slides
    if not isinstance(value, list):
        raise fail(ErrorCode.INVALID_REQUEST, f"custom-slides must be an array, not {_show(value)}")
    out = list(slides)
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise fail(ErrorCode.INVALID_REQUEST, f"custom-slides item {i} must be an object")
        number = item.get("custom-slide")
        if isinstance(number, str) and number.strip().isdigit() and number.strip().isascii():
            number = int(number.strip())
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(out):
            raise fail(
                ErrorCode.INVALID_REQUEST,
                f"custom-slides item {i}: custom-slide {_show(number)} is not a slide of the template "
                f"(1 to {len(out)})",
            )
        text = item.get("custom-message-text")
        if not isinstance(text, str):
            raise fail(ErrorCode.INVALID_REQUEST, f"custom-slides item {i}: custom-message-text must be a string")
        if len(text) > MAX_TEXT:
            raise fail(
                ErrorCode.TEXT_TOO_LONG,
                f"custom-slides item {i}: custom-message-text is {len(text)} characters long; "
                f"at most {MAX_TEXT} are allowed",
            )
        out[number - 1] = Slide(text=text, media=out[number - 1].media)
    return tuple(out)


def check_sendsavedmms(data: dict[str, Any], template: Template, config: AccountConfig, now: datetime) -> Message:
    """Section 2.3, after the template is found and usable: request fields override the template's."""
    saved = template.sending
    service_id = _service_id(data, config)
    to = _to(data, config)
    sender = _from(data, config, service_id)
    from_mask = _from_mask(data)
    subject = _string(data, "message-subject", ErrorCode.SUBJECT_INVALID, max_len=MAX_SUBJECT, required=False)
    disable_fallback = _quiet_boolean(data, "disable-fallback-sms", saved.disable_fallback_sms)
    given = data.get("fallback-sms-text")
    if given is None or (isinstance(given, str) and not given.strip()):
        given = saved.fallback_sms_text
    fallback_text = _fallback_text({"fallback-sms-text": given}, disable_fallback)
    disable_fallback = _boolean(data, "disable-fallback-sms", saved.disable_fallback_sms)
    disable_link = _boolean(data, "disable-fallback-sms-link", saved.disable_fallback_sms_link)
    link_expiration = _link_expiration(data, now) or saved.fallback_link_expires_at or _one_year_after(now)
    if link_expiration <= now:
        raise fail(
            ErrorCode.INVALID_REQUEST,
            "the template's fallback-sms-link-expiration has passed: give fallback-sms-link-expiration",
        )
    expires_at = _mms_expiry(data, now)
    client_reference = _client_reference(data) or saved.client_reference
    slides = _custom_slides(data, saved.slides)
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


def precheck(data: dict[str, Any], now: datetime) -> None:
    """Apply the rules that need no knowledge of the account (its campaigns, numbers, blocked numbers,
    templates), in the contract's order, raising the :class:`ApiError` the server would answer.

    ``mmsgate.client`` runs it before sending, so a client and the server always agree on those rules."""
    action = data.get("action")
    action = action.lower() if isinstance(action, str) else action
    if action == "sendmms":
        service_id = _service_id(data, None)
        _to(data, None)
        _from(data, None, service_id)
        _from_mask(data)
        _string(data, "message-subject", ErrorCode.SUBJECT_INVALID, max_len=MAX_SUBJECT, required=False)
        _fallback_text(data, _quiet_boolean(data, "disable-fallback-sms", False))
        _boolean(data, "disable-fallback-sms-link", False)
        _boolean(data, "disable-fallback-sms", False)
        _link_expiration(data, now)
        _mms_expiry(data, now)
        _client_reference(data)
        _boolean(data, "cache-content", True)
        _slides(data)
    elif action == "savemms":
        check_savemms(data, "", now)
    elif action == "sendsavedmms":
        mms_id_of(data)
        service_id = _service_id(data, None)
        _to(data, None)
        _from(data, None, service_id)
        _from_mask(data)
        _string(data, "message-subject", ErrorCode.SUBJECT_INVALID, max_len=MAX_SUBJECT, required=False)
        _link_expiration(data, now)
        _mms_expiry(data, now)
        _client_reference(data)

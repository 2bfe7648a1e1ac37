"""What each slide kind accepts (contract section 3) and which code each failure gets."""

from __future__ import annotations

from dataclasses import dataclass

from mmsgate.core.model import MediaKind


@dataclass(frozen=True, slots=True)
class KindRules:
    """The accepted MIME types of a kind and its failure codes."""

    types: frozenset[str]
    canonical: dict[str, str]
    fetch_failed: str
    too_big: str
    bad_content: str


def _rules(types: list[str], fetch: str, big: str, bad: str, aliases: dict[str, str] | None = None) -> KindRules:
    return KindRules(frozenset(types), aliases or {}, fetch, big, bad)


RULES: dict[MediaKind, KindRules] = {
    MediaKind.IMAGE: _rules(
        ["image/jpeg", "image/jpg", "image/png", "image/gif"], "E351", "E331", "E341", {"image/jpg": "image/jpeg"}
    ),
    MediaKind.AUDIO: _rules(
        ["audio/mp3", "audio/mpeg", "audio/x-wav", "audio/x-wave", "audio/wav", "audio/amr"],
        "E352",
        "E332",
        "E629",
        {"audio/mp3": "audio/mpeg", "audio/x-wave": "audio/wav", "audio/x-wav": "audio/wav"},
    ),
    MediaKind.VIDEO: _rules(
        ["video/mp4", "video/mpeg", "video/x-msvideo", "video/x-ms-wmv", "video/quicktime", "video/3gpp"],
        "E353",
        "E333",
        "E629",
    ),
    MediaKind.CONTACT: _rules(
        ["text/vcard", "text/v-card", "text/x-vcard"],
        "E355",
        "E335",
        "E629",
        {"text/v-card": "text/vcard", "text/x-vcard": "text/vcard"},
    ),
    MediaKind.CALENDAR: _rules(["text/calendar"], "E356", "E336", "E629"),
    MediaKind.PDF: _rules(
        ["application/pdf", "application/x-pdf"], "E357", "E337", "E629", {"application/x-pdf": "application/pdf"}
    ),
}

UNRECOGNISED = "E629"


def canonical(kind: MediaKind, content_type: str) -> str:
    rules = RULES[kind]
    return rules.canonical.get(content_type, content_type)

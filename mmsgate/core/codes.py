"""The contract's codes: API error codes (section 6) and postback event codes (section 4)."""

from __future__ import annotations

import enum

ACCEPTED_DETAILS = "MMS request accepted and queued for processing and delivery."
TEMPLATE_ACCEPTED_DETAILS = "Save MMS request accepted and queued for processing."


class ErrorCode(enum.StrEnum):
    """An E-code answered by the API. The value is the code as it appears on the wire."""

    INVALID_REQUEST = "E100"
    ACCESS_BLOCKED = "E103"
    INVALID_API_KEY = "E104"
    NO_API_ACCESS = "E105"
    TOO_CLOSE = "E106"
    ACTION_NOT_ALLOWED = "E107"
    JSON_PARSING = "E108"
    INVALID_TO = "E110"
    INVALID_FROM = "E111"
    IP_NOT_ALLOWED = "E112"
    THROUGHPUT_EXCEEDED = "E113"
    NUMBER_BLOCKED = "E114"
    INVALID_SENDER_MASK = "E115"
    SLIDE_ONE_OBJECT = "E223"
    SLIDE_MEDIA_WITH_OBJECT = "E224"
    TOO_MANY_SLIDES = "E225"
    AUDIO_WITH_VIDEO = "E226"
    VIDEO_WITH_IMAGE = "E227"
    TEXT_TOO_LONG = "E228"
    CONTENT_NOT_ALLOWED = "E229"
    MMS_ID_UNKNOWN = "E241"
    NAME_INVALID = "E311"
    NO_SLIDES = "E312"
    SLIDE_EMPTY = "E313"
    SUBJECT_INVALID = "E314"
    MMS_ID_REQUIRED = "E620"
    FALLBACK_TEXT_REQUIRED = "E622"
    TEMPLATE_PROCESSING = "E626"
    SERVICE_ID_INVALID = "E627"
    INTERNAL = "E503"


class EventCode(enum.StrEnum):
    """A postback code (contract section 4); `status` is the wire status text."""

    SENT = "N101"
    DELIVERED = "N102"
    EXPIRED = "N103"
    FAILED = "E101"
    REJECTED = "E102"
    TEMPLATE_READY = "N003"
    TEMPLATE_AUDIO_FAILED = "E002"
    TEMPLATE_VIDEO_FAILED = "E003"
    TEMPLATE_IMAGE_FAILED = "E004"
    TRANSCODED_SENT = "N013"
    CONTENT_INVALID = "E011"
    TRANSCODE_AUDIO_FAILED = "E012"
    TRANSCODE_VIDEO_FAILED = "E013"
    SMS_DELIVERED = "N202"
    SMS_FAILED = "E202"
    QUEUE_ERROR = "E999"
    INBOUND = "N401"

    @property
    def status(self) -> str:
        return _EVENT_STATUS[self]


_EVENT_STATUS: dict[EventCode, str] = {
    EventCode.SENT: "Sent",
    EventCode.DELIVERED: "Delivered",
    EventCode.EXPIRED: "Expired",
    EventCode.FAILED: "Failed",
    EventCode.REJECTED: "Rejected",
    EventCode.TEMPLATE_READY: "Transcoding successful",
    EventCode.TEMPLATE_AUDIO_FAILED: "Transcoding failed",
    EventCode.TEMPLATE_VIDEO_FAILED: "Transcoding failed",
    EventCode.TEMPLATE_IMAGE_FAILED: "Transcoding failed",
    EventCode.TRANSCODED_SENT: "Transcoding successful and sending triggered",
    EventCode.CONTENT_INVALID: "Content validation failed",
    EventCode.TRANSCODE_AUDIO_FAILED: "Transcoding failed",
    EventCode.TRANSCODE_VIDEO_FAILED: "Transcoding failed",
    EventCode.SMS_DELIVERED: "Delivered as SMS",
    EventCode.SMS_FAILED: "Fallback SMS failed",
    EventCode.QUEUE_ERROR: "Queue processing error",
    EventCode.INBOUND: "Received",
}


class MessageState(enum.StrEnum):
    """Where a message stands. The delivery engine moves it; the API only creates it `accepted`."""

    ACCEPTED = "accepted"
    MEDIA_READY = "media-ready"
    SUBMITTING = "submitting"
    """Recorded just before the carrier is called: after a crash the submit is reconciled, not repeated."""
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"
    FALLBACK = "fallback"
    """The MMS cannot go as MMS (the handset or carrier cannot take it): an SMS is to be sent instead."""
    SMS_SUBMITTING = "sms-submitting"
    """Recorded just before the SMS connector is called, like ``submitting``."""
    SMS_SUBMITTED = "sms-submitted"
    SMS_DELIVERED = "sms-delivered"
    SMS_FAILED = "sms-failed"


class TemplateState(enum.StrEnum):
    """A saved template starts `processing`; the media stage makes it `ready` or `failed`."""

    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class JobKind(enum.StrEnum):
    """What a job continues: a message's delivery or a template's media preparation."""

    DELIVER = "deliver"
    PREPARE_TEMPLATE = "prepare-template"
    SANDBOX_REPORT = "sandbox-report"
    """The sandbox carrier's delivery report for one submission, due after the handset's delay."""
    MM7_INBOUND = "mm7-inbound"
    """A request an MMSC posted to the VASP endpoint (report, MO, read reply), kept before it was answered."""

"""A template's way through the media stage (``prepare-template`` jobs), and the postback codes of media
failures.

A template's job prepares its media and makes it ready (N003) or failed (E002 audio, E003 video,
E004 image; E101 for other content). A message's media is prepared by the delivery engine
(:mod:`mmsgate.delivery.engine`), which reports its failures with :func:`message_failure`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from mmsgate.common.cache import AccountSettings
from mmsgate.core.codes import EventCode, TemplateState
from mmsgate.core.model import Job, MediaKind
from mmsgate.core.retry import attempts_made
from mmsgate.core.roles import Lifecycle, Messages
from mmsgate.errors import MediaError, NotFound
from mmsgate.media.stage import MediaStage
from mmsgate.postbacks.events import PostbackBuilder

log = logging.getLogger("mmsgate.pipeline")

_CONTENT_CODES = frozenset({"E341", "E629"})
"""Media codes meaning the content is not what it claims (E011), as opposed to unobtainable (E101)."""

_TRANSCODE_FAILURE = {
    EventCode.TRANSCODE_AUDIO_FAILED.value: EventCode.TRANSCODE_AUDIO_FAILED,
    EventCode.TRANSCODE_VIDEO_FAILED.value: EventCode.TRANSCODE_VIDEO_FAILED,
}

_TEMPLATE_FAILURE = {
    MediaKind.AUDIO.value: EventCode.TEMPLATE_AUDIO_FAILED,
    MediaKind.VIDEO.value: EventCode.TEMPLATE_VIDEO_FAILED,
    MediaKind.IMAGE.value: EventCode.TEMPLATE_IMAGE_FAILED,
}


def message_failure(error: Exception) -> tuple[EventCode, str]:
    """The postback code and details for a message whose media failed."""
    if isinstance(error, MediaError):
        if error.code in _CONTENT_CODES:
            code = EventCode.CONTENT_INVALID
        else:  # a failed transcoding keeps its own code (E012 audio, E013 video); anything else is E101
            code = _TRANSCODE_FAILURE.get(error.code, EventCode.FAILED)
        return code, f"{error.code}: {error.detail}"
    return EventCode.FAILED, f"E999: {error}"


def template_failure(error: Exception) -> tuple[EventCode, str]:
    if isinstance(error, MediaError):
        return _TEMPLATE_FAILURE.get(error.kind or "", EventCode.FAILED), f"{error.code}: {error.detail}"
    return EventCode.FAILED, f"E999: {error}"


class TemplateMedia:
    """Handler of ``prepare-template`` jobs."""

    def __init__(
        self,
        messages: Messages,
        lifecycle: Lifecycle,
        stage: MediaStage,
        postbacks: PostbackBuilder,
        accounts: AccountSettings,
    ) -> None:
        self.messages = messages
        self.lifecycle = lifecycle
        self.stage = stage
        self.postbacks = postbacks
        self.accounts = accounts

    async def run(self, job: Job) -> None:
        template = await self.messages.find_template(job.ref)
        if template.state is not TemplateState.PROCESSING:
            return
        transcoding = await self.accounts.transcoding(template.account_id)
        prepared = await self.stage.prepare(
            template.mms_id,
            template.sending.slides,
            adapt_images=transcoding,
            transcode_av=transcoding,
        )
        details = "template ready to send"
        await self.lifecycle.template_ready(
            template.mms_id,
            prepared.parts,
            details=details,
            postback=await self.postbacks.for_template(template, EventCode.TEMPLATE_READY, details),
        )

    async def attempt_failed(
        self, job: Job, error: Exception, attempt: int, max_attempts: int, next_run: datetime
    ) -> None:
        """Nothing to record yet: a template's timeline has no events for failed attempts (the worker logs
        them); its final failure says how often it was tried."""

    async def give_up(self, job: Job, error: Exception) -> None:
        code, details = template_failure(error)
        details = f"{details} ({attempts_made(job.attempts)})"
        try:
            template = await self.messages.find_template(job.ref)
        except NotFound:
            log.warning("job %s: template %s is gone", job.id, job.ref)
            return
        await self.lifecycle.set_template_state(
            job.ref,
            TemplateState.FAILED,
            code=code.value,
            details=details,
            postback=await self.postbacks.for_template(template, code, details),
        )

"""What jobs do: a message's and a template's way through the media stage.

A message's job (``deliver``) prepares its media (or takes its template's prepared parts) and moves it
to media-ready; the delivery engine continues from there. A template's job prepares its media and makes
it ready (N003) or failed (E002 audio, E003 video, E004 image; E101 for other content).
"""

from __future__ import annotations

import dataclasses
import logging

from mmsgate.core.codes import EventCode, MessageState, TemplateState
from mmsgate.core.model import Job, MediaKind
from mmsgate.errors import MediaError, NotFound
from mmsgate.media.stage import MediaStage
from mmsgate.store.base import Store

log = logging.getLogger("mmsgate.pipeline")

_CONTENT_CODES = frozenset({"E341", "E629"})
"""Media codes meaning the content is not what it claims (E011), as opposed to unobtainable (E101)."""

_TEMPLATE_FAILURE = {
    MediaKind.AUDIO.value: EventCode.TEMPLATE_AUDIO_FAILED,
    MediaKind.VIDEO.value: EventCode.TEMPLATE_VIDEO_FAILED,
    MediaKind.IMAGE.value: EventCode.TEMPLATE_IMAGE_FAILED,
}


def message_failure(error: Exception) -> tuple[EventCode, str]:
    """The postback code and details for a message whose media failed."""
    if isinstance(error, MediaError):
        code = EventCode.CONTENT_INVALID if error.code in _CONTENT_CODES else EventCode.FAILED
        return code, f"{error.code}: {error.detail}"
    return EventCode.FAILED, f"E999: {error}"


def template_failure(error: Exception) -> tuple[EventCode, str]:
    if isinstance(error, MediaError):
        return _TEMPLATE_FAILURE.get(error.kind or "", EventCode.FAILED), f"{error.code}: {error.detail}"
    return EventCode.FAILED, f"E999: {error}"


class MessageMedia:
    """Handler of ``deliver`` jobs, up to media-ready."""

    def __init__(self, store: Store, stage: MediaStage) -> None:
        self.store = store
        self.stage = stage

    async def run(self, job: Job) -> None:
        message = await self.store.find_message(job.ref)
        if message.state is not MessageState.ACCEPTED:
            return
        if message.mms_id is not None:
            parts = await self.store.list_parts(message.mms_id)
            copies = [dataclasses.replace(p, owner_id=message.tracking_id) for p in parts]
            await self.store.media_ready(
                message.tracking_id,
                copies,
                code=None,
                status="Media ready",
                details=f"content of template {message.mms_id}",
            )
            return
        account = await self.store.get_account(message.account_id)
        prepared = await self.stage.prepare(
            message.tracking_id,
            message.sending.slides,
            adapt_images=account.transcoding,
            transcode_av=False,
            use_cache=message.cache_content,
        )
        if prepared.adapted:
            code = EventCode.TRANSCODED_SENT
            await self.store.media_ready(
                message.tracking_id,
                prepared.parts,
                code=code.value,
                status=code.status,
                details="content was adapted to the carrier profile",
            )
        else:
            await self.store.media_ready(
                message.tracking_id, prepared.parts, code=None, status="Media ready", details="content checked"
            )

    async def give_up(self, job: Job, error: Exception) -> None:
        code, details = message_failure(error)
        try:
            await self.store.fail_message(job.ref, code=code.value, status=code.status, details=details)
        except NotFound:
            log.warning("job %s: message %s is gone", job.id, job.ref)


class TemplateMedia:
    """Handler of ``prepare-template`` jobs."""

    def __init__(self, store: Store, stage: MediaStage) -> None:
        self.store = store
        self.stage = stage

    async def run(self, job: Job) -> None:
        template = await self.store.find_template(job.ref)
        if template.state is not TemplateState.PROCESSING:
            return
        account = await self.store.get_account(template.account_id)
        prepared = await self.stage.prepare(
            template.mms_id,
            template.sending.slides,
            adapt_images=account.transcoding,
            transcode_av=account.transcoding,
        )
        await self.store.template_ready(template.mms_id, prepared.parts, details="template ready to send")

    async def give_up(self, job: Job, error: Exception) -> None:
        code, details = template_failure(error)
        await self.store.set_template_state(job.ref, TemplateState.FAILED, code=code.value, details=details)

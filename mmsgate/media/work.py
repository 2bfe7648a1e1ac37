"""The CPU-bound steps of the media stage, as plain functions that run in worker processes.

They take file paths rather than bytes so that large sources are never copied between processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.adapt import Adapted, CarrierProfile, adapt_image, transcode_audio, transcode_video
from mmsgate.media.inspect import MediaInfo, inspect_content
from mmsgate.media.kinds import RULES
from mmsgate.media.sniff import decide_type


@dataclass(frozen=True, slots=True)
class Checked:
    """A fetched file proven to be of ``info.content_type``."""

    info: MediaInfo
    size: int


def check_file(kind: MediaKind, declared: str | None, path: Path) -> Checked:
    body = path.read_bytes()
    content_type = decide_type(kind, declared, body)
    return Checked(inspect_content(kind, content_type, body), len(body))


def adapt_file(
    kind: MediaKind, info: MediaInfo, path: Path, profile: CarrierProfile, budget: int, *, adapt: bool, transcode: bool
) -> Adapted:
    """Fit one file into ``budget`` bytes (and, for images, the profile's box) or say why it cannot."""
    body = path.read_bytes()
    if kind is MediaKind.IMAGE:
        fits = info.width <= profile.max_image_width and info.height <= profile.max_image_height
        if adapt:
            return adapt_image(body, info.content_type, profile, budget)
        if not fits or len(body) > budget:
            raise MediaError(
                RULES[kind].too_big,
                f"image of {info.width}×{info.height} pixels and {len(body)} bytes does not fit the carrier profile "
                f"({profile.max_image_width}×{profile.max_image_height}, {budget} bytes) and transcoding is off",
            )
        return Adapted(body, info.content_type, info.width, info.height)
    if transcode and kind is MediaKind.AUDIO and (info.content_type not in profile.audio_types or len(body) > budget):
        return transcode_audio(body)
    if transcode and kind is MediaKind.VIDEO and (info.content_type not in profile.video_types or len(body) > budget):
        return transcode_video(body, profile)
    return Adapted(body, info.content_type, info.width, info.height)

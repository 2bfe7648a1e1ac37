"""Fit content to a carrier profile: images resized and re-encoded; audio and video transcoded.

Images are decoded at reduced size where the format allows it (JPEG draft mode), so a 4000×3000 photo
costs a fraction of a full decode. Animated GIFs keep their animation where the profile allows it and
it fits; otherwise the first frame is sent. Blocking and CPU-bound: run in a worker process.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import av
from PIL import Image, ImageOps, ImageSequence

from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.kinds import RULES

BASE64_GROWTH = 1.37
PART_OVERHEAD = 814


def encoded_size(size: int) -> int:
    """Bytes a part of ``size`` takes in the MMS after base64 and its MIME headers."""
    return int(size * BASE64_GROWTH) + PART_OVERHEAD


@dataclass(frozen=True, slots=True)
class CarrierProfile:
    """What a carrier accepts. The defaults suit US carriers' common 600 KB limit."""

    name: str = "default"
    max_message_bytes: int = 600_000
    max_image_width: int = 640
    max_image_height: int = 480
    animated_gif: bool = True
    jpeg_quality: int = 80
    audio_types: frozenset[str] = field(default_factory=lambda: frozenset({"audio/amr", "audio/mpeg"}))
    video_types: frozenset[str] = field(default_factory=lambda: frozenset({"video/3gpp", "video/mp4"}))


@dataclass(frozen=True, slots=True)
class Adapted:
    body: bytes
    content_type: str
    width: int = 0
    height: int = 0
    changed: bool = False


def _fits_box(width: int, height: int, profile: CarrierProfile) -> bool:
    return width <= profile.max_image_width and height <= profile.max_image_height


def adapt_image(body: bytes, content_type: str, profile: CarrierProfile, budget: int) -> Adapted:
    """The image within the profile's box and ``budget`` bytes, re-encoded only if it has to be."""
    with Image.open(io.BytesIO(body)) as img:
        width, height = img.size
        frames = getattr(img, "n_frames", 1)
        if _fits_box(width, height, profile) and len(body) <= budget and (frames == 1 or profile.animated_gif):
            return Adapted(body, content_type, width, height)
        if frames > 1 and profile.animated_gif:
            animated = _animated_gif(img, profile, budget)
            if animated is not None:
                return animated
        box = (profile.max_image_width, profile.max_image_height)
        if img.format == "JPEG":
            img.draft("RGB", box)  # decode at 1/2, 1/4 or 1/8 scale when that still covers the box
        still = ImageOps.exif_transpose(img)
    still = _flatten(still)
    still.thumbnail(box, Image.Resampling.BILINEAR, reducing_gap=2.0)
    quality = profile.jpeg_quality
    for _ in range(8):
        out = io.BytesIO()
        still.save(out, "JPEG", quality=quality)
        if out.tell() <= budget:
            return Adapted(out.getvalue(), "image/jpeg", still.width, still.height, changed=True)
        if quality > 50:
            quality -= 10
        else:
            still.thumbnail((max(16, int(still.width * 0.75)), max(16, int(still.height * 0.75))))
    raise MediaError(
        RULES[MediaKind.IMAGE].too_big, f"image cannot be made smaller than {out.tell()} bytes (budget {budget})"
    )


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img


def _animated_gif(img: Image.Image, profile: CarrierProfile, budget: int) -> Adapted | None:
    box = (profile.max_image_width, profile.max_image_height)
    scale = 1.0
    for _ in range(4):
        frames: list[Image.Image] = []
        durations: list[int] = []
        for frame in ImageSequence.Iterator(img):
            copy = frame.convert("RGBA")
            target = (max(1, int(box[0] * scale)), max(1, int(box[1] * scale)))
            copy.thumbnail(target, Image.Resampling.BILINEAR)
            frames.append(copy)
            durations.append(int(frame.info.get("duration", 100)))
        out = io.BytesIO()
        frames[0].save(
            out, "GIF", save_all=True, append_images=frames[1:], duration=durations, loop=img.info.get("loop", 0)
        )
        if out.tell() <= budget:
            return Adapted(out.getvalue(), "image/gif", frames[0].width, frames[0].height, changed=True)
        scale *= 0.7
    return None


def transcode_audio(body: bytes) -> Adapted:
    """Any decodable audio → AMR-NB (8 kHz mono), the one format every MMS handset plays."""
    out = io.BytesIO()
    try:
        with av.open(io.BytesIO(body), mode="r") as source, av.open(out, mode="w", format="amr") as target:
            stream = target.add_stream("libopencore_amrnb", rate=8000)
            stream.codec_context.bit_rate = 12200
            stream.codec_context.layout = "mono"
            resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
            for frame in source.decode(audio=0):
                for resampled in resampler.resample(frame):
                    for packet in stream.encode(resampled):
                        target.mux(packet)
            for resampled in resampler.resample(None):
                for packet in stream.encode(resampled):
                    target.mux(packet)
            for packet in stream.encode(None):
                target.mux(packet)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError("E012", f"audio could not be transcoded: {exc}") from exc
    return Adapted(out.getvalue(), "audio/amr", changed=True)


def transcode_video(body: bytes, profile: CarrierProfile) -> Adapted:
    """Any decodable video → H.264 baseline + AAC in 3GP, scaled into the profile's box."""
    out = io.BytesIO()
    try:
        with av.open(io.BytesIO(body), mode="r") as source, av.open(out, mode="w", format="3gp") as target:
            src_video = source.streams.video[0]
            scale = min(
                1.0,
                profile.max_image_width / max(1, src_video.codec_context.width),
                profile.max_image_height / max(1, src_video.codec_context.height),
            )
            width = max(2, int(src_video.codec_context.width * scale) // 2 * 2)
            height = max(2, int(src_video.codec_context.height * scale) // 2 * 2)
            video = target.add_stream("libx264", rate=src_video.average_rate or 15)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.codec_context.options = {"profile": "baseline", "preset": "veryfast", "crf": "30"}
            audio = None
            if source.streams.audio:
                audio = target.add_stream("aac", rate=22050)
                audio.codec_context.layout = "mono"
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=22050)
            for frame in source.decode(*([src_video] + ([source.streams.audio[0]] if audio else []))):
                if isinstance(frame, av.VideoFrame):
                    scaled = frame.reformat(width=width, height=height, format="yuv420p")
                    scaled.pts, scaled.time_base = frame.pts, frame.time_base
                    for packet in video.encode(scaled):
                        target.mux(packet)
                elif audio is not None and isinstance(frame, av.AudioFrame):
                    for resampled in resampler.resample(frame):
                        for packet in audio.encode(resampled):
                            target.mux(packet)
            for packet in video.encode(None):
                target.mux(packet)
            if audio is not None:
                for packet in audio.encode(None):
                    target.mux(packet)
    except (av.error.FFmpegError, ValueError, OSError, IndexError) as exc:
        raise MediaError("E013", f"video could not be transcoded: {exc}") from exc
    return Adapted(out.getvalue(), "video/3gpp", width, height, changed=True)

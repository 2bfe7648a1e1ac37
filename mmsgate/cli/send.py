"""``mmsgate send`` and ``mmsgate template save``: the JSON API from the shell, through :mod:`mmsgate.client`.

They work against any server of the API (``--url`` / ``MMSGATE_URL``) with its key (``--api-key`` /
``MMSGATE_API_KEY``, or ``MMSGATE_KEY`` as ``mmsgate demo env`` exports it). ``--wait`` follows the message
(or template) through mmsgate's status view and prints each step as it happens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import click

from mmsgate.client import Accepted, ApiFailure, AsyncClient, ClientError, Slide

P = ParamSpec("P")
T = TypeVar("T")

FINAL_MESSAGE_STATES = {"delivered": 0, "sms-delivered": 0, "rejected": 1, "failed": 1, "expired": 1, "sms-failed": 1}
FINAL_TEMPLATE_STATES = {"ready": 0, "failed": 1}
MEDIA_KINDS = ("image", "audio", "video", "contact", "calendar", "pdf")
DEFAULT_FALLBACK = "You have a new MMS"
"""The fallback SMS text when neither --fallback-text, --subject nor --text gives one."""


def _connection_options(fn: Callable[P, T]) -> Callable[P, T]:
    fn = click.option("--json", "as_json", is_flag=True, help="print JSON lines instead of text")(fn)
    fn = click.option(
        "--timeout", type=click.FloatRange(1, 86400), default=300.0, show_default=True, help="most seconds to --wait"
    )(fn)
    fn = click.option("--wait", is_flag=True, help="follow it until it ends, printing each step")(fn)
    fn = click.option(
        "--url", envvar="MMSGATE_URL", default="http://127.0.0.1:8080", show_default=True, help="the API's base URL"
    )(fn)
    fn = click.option(
        "--api-key", envvar=["MMSGATE_API_KEY", "MMSGATE_KEY"], required=True, help="the account's API key"
    )(fn)
    return fn


def _content_options(fn: Callable[P, T]) -> Callable[P, T]:
    fn = click.option(
        "--slide", "slides_json", multiple=True, help='a whole slide as JSON, e.g. \'{"message-text": "Hi"}\''
    )(fn)
    for kind in reversed(MEDIA_KINDS):
        fn = click.option(
            f"--{kind}", f"{kind}_urls", multiple=True, help=f"URL of {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
        )(fn)
    fn = click.option("--text", default=None, help="text of the first slide")(fn)
    fn = click.option("--subject", default=None, help="message-subject")(fn)
    return fn


def build_slides(text: str | None, media: Mapping[str, Sequence[str]], slides_json: Sequence[str]) -> list[Slide]:
    """Slides from the options: ``--slide`` objects as given; otherwise one slide per image, video or
    attachment, audio joining the first slide without a video, and the text on the first slide."""
    if slides_json:
        if text is not None or any(media.values()):
            raise click.UsageError("give either --slide or --text and media options, not both")
        return [_slide_from_json(raw, n) for n, raw in enumerate(slides_json, 1)]
    slides: list[Slide] = []
    for kind in ("image", "video", "contact", "calendar", "pdf"):
        slides.extend(Slide().with_media(kind, url) for url in media.get(kind, ()))
    for url in media.get("audio", ()):
        target = next((i for i, s in enumerate(slides) if not any(k in ("audio", "video") for k, _ in s.media)), None)
        if target is None or any(k in ("contact", "calendar", "pdf") for k, _ in slides[target].media):
            slides.append(Slide().with_media("audio", url))
        else:
            slides[target] = slides[target].with_media("audio", url)
    if text is not None:
        if slides:
            first = slides[0]
            slides[0] = Slide(text=text, media=first.media)
        else:
            slides.append(Slide.of_text(text))
    if not slides:
        raise click.UsageError("nothing to send: give --text, a media option or --slide")
    return slides


def _slide_from_json(raw: str, n: int) -> Slide:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"slide {n} is not JSON: {exc}", param_hint="--slide") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"slide {n} must be a JSON object", param_hint="--slide")
    media: list[tuple[str, str]] = []
    for key, value in data.items():
        if key == "message-text":
            continue
        url = value.get("url") if isinstance(value, dict) else None
        if key not in MEDIA_KINDS or not isinstance(url, str):
            raise click.BadParameter(f'slide {n}: {key!r} is not a media key with {{"url": ...}}', param_hint="--slide")
        media.append((key, url))
    text = data.get("message-text")
    return Slide(text=text if isinstance(text, str) else None, media=tuple(media))


def _say(as_json: bool, data: dict[str, Any], human: str) -> None:
    click.echo(json.dumps(data) if as_json else human)
    sys.stdout.flush()


def _run(work: Callable[[], Any]) -> None:
    """Run the command's coroutine; API failures exit 1 with their E-code, transport failures exit 3."""
    try:
        code = asyncio.run(work())
    except ApiFailure as exc:
        click.echo(f"failure: {exc.code}: {exc.info}", err=True)
        sys.exit(1)
    except ClientError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    sys.exit(code or 0)


def _pending_report(view: dict[str, Any], shown: dict[str, Any] | None, as_json: bool) -> dict[str, Any] | None:
    """Say once that a report came before the gateway recorded the submit (it is applied once that is)."""
    pending = view.get("pending-report")
    if pending and pending != shown:
        what = "SMS receipt" if pending.get("kind") == "sms" else "delivery report"
        _say(
            as_json,
            {"pending-report": pending},
            f"{pending.get('received', '')}  -      pending {what} from {pending.get('carrier', '')}: "
            f"{pending.get('status', '')} ({pending.get('status-details', '')}); applied once the submit is recorded",
        )
    return pending or None


async def _follow(read: Callable[[], Any], finals: dict[str, int], as_json: bool, within: float) -> int:
    """Print each event of the view as it appears, until its state is final; the exit status it means."""
    shown = 0
    pending: dict[str, Any] | None = None
    deadline = asyncio.get_running_loop().time() + within
    while True:
        view = await read()
        events = view.get("events", [])
        for event in events[shown:]:
            code = event.get("code") or "-"
            _say(
                as_json,
                {"event": event},
                f"{event.get('timestamp', '')}  {code:5}  {event.get('status', '')}: {event.get('status-details', '')}",
            )
        shown = max(shown, len(events))
        pending = _pending_report(view, pending, as_json)
        state = view.get("state")
        if state in finals:
            if finals[state]:
                last: dict[str, Any] = next((e for e in reversed(events) if e.get("code")), {})
                click.echo(f"{state}: {last.get('code', '')} {last.get('status-details', '')}".rstrip(), err=True)
            return finals[state]
        if asyncio.get_running_loop().time() > deadline:
            click.echo(f"still {state} after {within:g} s", err=True)
            return 2
        await asyncio.sleep(0.5)  # the status view is polled; the gateway pushes nothing to a shell


@click.command()
@click.option("--to", required=True, envvar="MMSGATE_TO", help="the recipient's mobile number")
@click.option("--from", "sender", required=True, envvar="MMSGATE_FROM", help="one of the account's numbers")
@click.option("--service-id", required=True, envvar="MMSGATE_SERVICE_ID", help="the campaign")
@click.option("--template", "mms_id", default=None, help="send a saved template (mms-id) instead of content")
@click.option("--custom-text", multiple=True, help="with --template: N=TEXT replaces slide N's text")
@click.option("--fallback-text", default=None, help="fallback-sms-text (default: the subject or text)")
@click.option("--client-reference", default=None)
@_content_options
@_connection_options
def send(
    to: str,
    sender: str,
    service_id: str,
    mms_id: str | None,
    custom_text: tuple[str, ...],
    fallback_text: str | None,
    client_reference: str | None,
    subject: str | None,
    text: str | None,
    slides_json: tuple[str, ...],
    api_key: str,
    url: str,
    wait: bool,
    timeout: float,
    as_json: bool,
    **media: tuple[str, ...],
) -> None:
    """Send an MMS (sendmms), or a saved template (sendsavedmms with --template)."""
    fallback = fallback_text or subject or text or DEFAULT_FALLBACK
    custom: dict[int, str] = {}
    for item in custom_text:
        number, sep, value = item.partition("=")
        if not sep or not number.isdigit():
            raise click.BadParameter(f"{item!r} is not N=TEXT", param_hint="--custom-text")
        custom[int(number)] = value
    content = {kind: media[f"{kind}_urls"] for kind in MEDIA_KINDS}
    slides = [] if mms_id is not None else build_slides(text, content, slides_json)

    async def work() -> int:
        async with AsyncClient(api_key, url) as client:
            accepted: Accepted
            if mms_id is not None:
                accepted = await client.send_saved_mms(
                    mms_id=mms_id,
                    service_id=service_id,
                    to=to,
                    sender=sender,
                    custom_slides=custom or None,
                    subject=subject,
                    fallback_sms_text=fallback_text,
                    client_reference=client_reference,
                )
            else:
                accepted = await client.send_mms(
                    service_id=service_id,
                    to=to,
                    sender=sender,
                    slides=slides,
                    subject=subject,
                    fallback_sms_text=fallback,
                    client_reference=client_reference,
                )
            _say(
                as_json,
                {"tracking-id": accepted.tracking_id, "status-details": accepted.status_details},
                f"accepted: tracking-id {accepted.tracking_id}",
            )
            if not wait:
                return 0
            return await _follow(lambda: client.message(accepted.tracking_id), FINAL_MESSAGE_STATES, as_json, timeout)

    _run(work)


@click.group()
def template() -> None:
    """Saved MMS templates (savemms) through the JSON API."""


@template.command("save")
@click.option("--name", required=True, help="the template's name")
@click.option("--fallback-text", default=None, help="fallback-sms-text for every send (default: subject or text)")
@click.option("--client-reference", default=None)
@_content_options
@_connection_options
def template_save(
    name: str,
    fallback_text: str | None,
    client_reference: str | None,
    subject: str | None,
    text: str | None,
    slides_json: tuple[str, ...],
    api_key: str,
    url: str,
    wait: bool,
    timeout: float,
    as_json: bool,
    **media: tuple[str, ...],
) -> None:
    """Save a template; prints its mms-id (--wait: until it is ready to send)."""
    slides = build_slides(text, {kind: media[f"{kind}_urls"] for kind in MEDIA_KINDS}, slides_json)

    async def work() -> int:
        async with AsyncClient(api_key, url) as client:
            accepted = await client.save_mms(
                name=name,
                slides=slides,
                subject=subject,
                fallback_sms_text=fallback_text or subject or text or DEFAULT_FALLBACK,
                client_reference=client_reference,
            )
            mms_id = accepted.mms_id or ""
            _say(as_json, {"mms-id": mms_id, "tracking-id": accepted.tracking_id}, f"saved: mms-id {mms_id}")
            if not wait:
                return 0
            return await _follow(lambda: client.template(mms_id), FINAL_TEMPLATE_STATES, as_json, timeout)

    _run(work)


COMMANDS = (send, template)

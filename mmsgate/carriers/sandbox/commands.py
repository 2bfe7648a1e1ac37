"""``mmsgate sandbox``: the sandbox carrier's virtual handsets from the command line.

Works while ``serve`` runs (the store is shared): set how a handset behaves, read its inbox, and send
an MMS from it to one of an account's numbers.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import click
import filetype

from mmsgate.carriers.base import InboundFile
from mmsgate.carriers.plugin import CommandKit, EdgePorts
from mmsgate.carriers.sandbox.carrier import HandsetMms, send_from_handset
from mmsgate.carriers.sandbox.inbox import inbox_entry, sms_entry
from mmsgate.core.records import Behaviour, Handset

Shown = tuple[dict[str, Any], str]


def _content_type(path: Path, data: bytes) -> str:
    kind = filetype.guess(data)
    if kind is not None:
        return str(kind.mime)
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def commands(kit: CommandKit) -> list[click.Command]:
    """``handset``, ``inbox`` and ``send``."""

    @click.command("handset")
    @click.argument("value", metavar="NUMBER")
    @click.option(
        "--behaviour",
        type=click.Choice([b.value for b in Behaviour]),
        default=None,
        help="how the handset treats an MMS (without it: show the current one)",
    )
    @click.option("--delay", type=click.FloatRange(0, 86400), default=None, help="seconds before the report")
    @kit.admin
    async def handset(ports: EdgePorts, value: str, behaviour: str | None, delay: float | None) -> Shown:
        """Show or set how the handset NUMBER behaves (a number never set delivers at once)."""
        number = kit.number(value)
        current = await ports.sandbox.get_handset(number)
        if behaviour is not None or delay is not None:
            current = Handset(
                number,
                Behaviour(behaviour) if behaviour is not None else current.behaviour,
                delay if delay is not None else current.delay,
            )
            await ports.sandbox.set_handset(current)
        data = {"number": number, "behaviour": current.behaviour.value, "delay": current.delay}
        return data, f"{number}: {current.behaviour.value}, delay {current.delay:g} s"

    @click.command("inbox")
    @click.argument("value", metavar="NUMBER")
    @click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
    @kit.admin
    async def inbox(ports: EdgePorts, value: str, limit: int) -> Shown:
        """What the handset NUMBER received, newest first: MMS with every part, then SMS."""
        number = kit.number(value)
        messages = [inbox_entry(*row) for row in await ports.sandbox.sandbox_inbox(number, limit)]
        lines = []
        for m in messages:
            texts = " / ".join(p["text"] for p in m["parts"] if "text" in p)
            media = ", ".join(p["content-type"] for p in m["parts"] if "text" not in p)
            lines.append(f"{m['delivered']}  from {m['from']}  {m['subject'] or ''!s}  {texts}  [{media}]")
        sms = [sms_entry(s) for s in await ports.sandbox.sandbox_sms_inbox(number, limit)]
        lines.extend(f"{s['received']}  SMS from {s['from']}  {s['text']}" for s in sms)
        return {"number": number, "messages": messages, "sms": sms}, "\n".join(lines) or "inbox is empty"

    @click.command("send")
    @click.option("--from", "sender", required=True, help="the handset's number")
    @click.option("--to", "to", required=True, help="one of an account's numbers")
    @click.option("--subject", default=None)
    @click.option("--text", default=None)
    @click.option("--file", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--copy-to", "copy_to", multiple=True, help="other recipients of a group MMS")
    @kit.admin
    async def send(
        ports: EdgePorts,
        sender: str,
        to: str,
        subject: str | None,
        text: str | None,
        files: tuple[Path, ...],
        copy_to: tuple[str, ...],
    ) -> Shown:
        """Send an MMS from a handset to an account's number (the account gets the N401 postback)."""
        parts = []
        for path in files:
            data = path.read_bytes()
            parts.append(InboundFile(_content_type(path, data), data, path.name))
        tracking_id = await send_from_handset(
            ports.inbound,
            HandsetMms(
                kit.number(sender), kit.number(to), subject, text, tuple(parts), tuple(kit.number(n) for n in copy_to)
            ),
        )
        return {"tracking-id": tracking_id}, f"sent: tracking-id {tracking_id}"

    return [handset, inbox, send]

"""The console's virtual phones (the sandbox carrier's handsets): the list, one phone's conversation, its
settings (how it answers deliveries), sending an MMS from it, and the files it received and sent."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from mmsgate.carriers.base import InboundFile, InboundSink
from mmsgate.carriers.sandbox.carrier import HandsetMms, send_from_handset
from mmsgate.carriers.sandbox.inbox import inbox_part
from mmsgate.contract import normalise_number
from mmsgate.core.records import Behaviour, Handset
from mmsgate.core.roles import SandboxState
from mmsgate.errors import InboundRefused
from mmsgate.web.console import pages
from mmsgate.web.console.auth import Session
from mmsgate.web.console.kit import COMMON_HEADERS, FILE_POLICY, Kit, plain, redirect


class PhonePages:
    """The virtual phones' pages; an MMS sent from a phone goes to the inbound receiver as a carrier's would."""

    def __init__(self, kit: Kit, sandbox: SandboxState, inbound: InboundSink) -> None:
        self.kit = kit
        self.sandbox = sandbox
        self.inbound = inbound

    async def phones(self, request: Request, session: Session) -> Response:
        wanted = request.query_params.get("number", "").strip()
        error = ""
        if wanted:
            number = normalise_number(wanted)
            if number is not None:
                return redirect(f"/console/phones/{number}")
            error = f"{wanted!r} is not a number: digits in international format, such as 15550100001."
        return self.kit.render(
            "phones.html",
            400 if error else 200,
            section="phones",
            session=session,
            handsets=await self.sandbox.known_handsets(),
            error=error,
            wanted=wanted,
        )

    async def phone(self, request: Request, session: Session, *, error: str = "", status: int = 200) -> Response:
        number = normalise_number(request.path_params["number"])
        if number is None:
            return self.kit.render("missing.html", 404, session=session, what="A phone number is digits only.")
        inbox = await self.sandbox.sandbox_inbox(number, 50)
        sms = await self.sandbox.sandbox_sms_inbox(number, 50)
        sent = await self.sandbox.sent_by(number, 50)
        texts: dict[str, bytes] = {}
        for inbound in sent:
            for part in inbound.parts:
                if part.content_type.lower().startswith("text/plain") and part.size <= 64 * 1024:
                    try:
                        texts[part.sha256] = await asyncio.to_thread(self.kit.blobs.get, part.sha256)
                    except FileNotFoundError:
                        continue
        bubbles = [
            *(pages.received_mms(number, *row) for row in inbox),
            *(pages.received_sms(s) for s in sms),
            *(pages.sent_mms(number, inbound, texts) for inbound in sent),
        ]
        bubbles.sort(key=lambda b: b.at)
        numbers = await self.kit.account_numbers()
        reply_to = next((b.peer for b in reversed(bubbles) if b.direction == "in"), None)
        return self.kit.render(
            "phone.html",
            status,
            section="phones",
            session=session,
            number=number,
            handset=await self.sandbox.get_handset(number),
            behaviours=[b.value for b in Behaviour],
            bubbles=bubbles[-60:],
            numbers=numbers,
            reply_to=reply_to,
            sent=request.query_params.get("sent", ""),
            error=error,
        )

    async def phone_settings(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"])
        if number is None:
            return self.kit.render("missing.html", 404, session=session, what="A phone number is digits only.")
        form = await request.form()
        try:
            behaviour = Behaviour(str(form.get("behaviour", "")))
            delay = float(str(form.get("delay") or 0))
        except ValueError:
            return await self.phone(request, session, error="Choose a behaviour and a delay in seconds.", status=400)
        if not 0 <= delay <= 86400:
            return await self.phone(request, session, error="The delay is 0 to 86400 seconds.", status=400)
        await self.sandbox.set_handset(Handset(number, behaviour, delay))
        return redirect(f"/console/phones/{number}")

    async def phone_send(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"])
        if number is None:
            return self.kit.render("missing.html", 404, session=session, what="A phone number is digits only.")
        form = await request.form()
        to = normalise_number(str(form.get("to", "")))
        if to is None:
            return await self.phone(request, session, error="Choose the number to send to.", status=400)
        files: list[InboundFile] = []
        for item in form.getlist("files"):
            if isinstance(item, UploadFile) and item.filename:
                data = await item.read()
                if data:
                    content_type = item.content_type or "application/octet-stream"
                    files.append(InboundFile(content_type, data, item.filename))
        subject = str(form.get("subject") or "").strip() or None
        text = str(form.get("text") or "") or None
        try:
            tracking_id = await send_from_handset(self.inbound, HandsetMms(number, to, subject, text, tuple(files)))
        except InboundRefused as exc:
            return await self.phone(request, session, error=str(exc), status=400)
        return redirect(f"/console/phones/{number}?" + urlencode({"sent": tracking_id}))

    async def inbox_file(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"]) or ""
        part = await inbox_part(self.sandbox, number, request.path_params["message"], request.path_params["location"])
        if part is None:
            return plain("no such part in this phone's inbox\n", 404)
        if part.data is not None:
            return Response(
                part.data,
                media_type=part.content_type,
                headers={**COMMON_HEADERS, "Content-Security-Policy": FILE_POLICY, "Content-Disposition": "attachment"},
            )
        return await self.kit.file(part.sha256 or "", part.content_type, request.path_params["location"])

    async def sent_file(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"]) or ""
        wanted, position = request.path_params["inbound"], request.path_params["position"]
        for inbound in await self.sandbox.sent_by(number, 200):
            if inbound.id == wanted:
                part = next((p for p in inbound.parts if p.position == position), None)
                if part is not None:
                    return await self.kit.file(part.sha256, part.content_type, part.name)
        return plain("no such file sent by this phone\n", 404)

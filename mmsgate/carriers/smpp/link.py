"""One TCP connection to an SMSC with one bind on it (transceiver, transmitter or receiver).

The session loop is ours, not aiosmpplib's ``ESME``: that answers each deliver_sm itself with ESME_ROK once
its hook returned (a hook that raises drops the connection, or ends the ESME, instead of answering an
error), and does not let us resend a throttled submit_sm. A :class:`Link` numbers requests and matches
their responses, answers enquire_link and unbind, keeps the bind alive with enquire_link, and hands each
deliver_sm to its owner, which answers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from typing import Literal

from aiosmpplib import EnquireLink, EnquireLinkResp, GenericNack, SmppCommand, SmppCommandStatus, UnbindResp

from mmsgate.carriers.smpp.pdus import RINVCMDID, ROK, status_text

log = logging.getLogger("mmsgate.smpp")

BindKind = Literal["transceiver", "transmitter", "receiver"]

_HEADER = struct.Struct("!IIII")
_MAX_PDU = 70_000  # a message_payload of 64 KB and the rest


class NotSent(Exception):
    """The PDU did not go out: the connection was already down."""


class Lost(Exception):
    """The PDU went out, then the connection was lost before its response came."""


class Link:
    """A socket to the SMSC: numbers requests and matches their responses, answers enquire_link and unbind,
    hands each deliver_sm to ``on_deliver``. ``closed`` resolves (to the reason) when the link is down."""

    def __init__(
        self,
        kind: BindKind,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_deliver: Callable[[Link, int, bytes], None],
    ) -> None:
        self.kind = kind
        self.reader = reader
        self.writer = writer
        self.on_deliver = on_deliver
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.bound_at = 0.0
        self.pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._sequence = 0
        self._drain_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = [asyncio.create_task(self._reading(), name=f"smpp-read-{kind}")]

    @property
    def alive(self) -> bool:
        return not self.closed.done()

    def next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    async def send(self, pdu: bytes) -> None:
        """Write a PDU (a response, or a request whose answer nobody awaits)."""
        if not self.alive:
            raise NotSent(self.closed.result())
        self.writer.write(pdu)
        await self._drain()

    async def request(self, build: Callable[[int], bytes], within: float) -> tuple[int, bytes]:
        """Send the request ``build(sequence_number)`` and return its response's (command_status, body).

        Raises NotSent when the link was down, Lost when it went down after the PDU went out,
        TimeoutError when no response came ``within`` seconds."""
        if not self.alive:
            raise NotSent(self.closed.result())
        sequence = self.next_sequence()
        pdu = build(sequence)
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.pending[sequence] = answer
        try:
            self.writer.write(pdu)
            await self._drain()
            return await asyncio.wait_for(answer, within)
        finally:
            self.pending.pop(sequence, None)

    async def _drain(self) -> None:
        try:
            async with self._drain_lock:
                await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close(f"write failed: {exc!r}")
            raise Lost(self.closed.result()) from exc

    def keep_alive(self, interval: float, timeout: float) -> None:
        self._tasks.append(asyncio.create_task(self._keeping_alive(interval, timeout), name=f"smpp-ping-{self.kind}"))

    async def _keeping_alive(self, interval: float, within: float) -> None:
        while self.alive:
            await asyncio.sleep(interval)
            try:
                status, _ = await self.request(lambda seq: bytes(EnquireLink(sequence_num=seq).pdu()), within)
            except TimeoutError:
                self.close(f"enquire_link unanswered for {within:g} s")
                return
            except (NotSent, Lost):
                return
            if status != ROK:
                log.debug("enquire_link answered %s", status_text(status))

    async def _reading(self) -> None:
        reason = "the SMSC closed the connection"
        try:
            while True:
                length, command, status, sequence = _HEADER.unpack(await self.reader.readexactly(_HEADER.size))
                if not _HEADER.size <= length <= _MAX_PDU:
                    reason = f"the SMSC sent a PDU of impossible length {length}"
                    break
                body = await self.reader.readexactly(length - _HEADER.size) if length > _HEADER.size else b""
                if command & 0x80000000:  # a response, or generic_nack
                    answer = self.pending.pop(sequence, None)
                    if answer is not None and not answer.done():
                        answer.set_result((status, body))
                    elif command != SmppCommand.ENQUIRE_LINK_RESP:
                        log.debug("response 0x%08X to sequence %d that nobody awaits (late?)", command, sequence)
                elif command == SmppCommand.DELIVER_SM:
                    self.on_deliver(self, sequence, body)
                elif command == SmppCommand.ENQUIRE_LINK:
                    await self.send(bytes(EnquireLinkResp(sequence_num=sequence).pdu()))
                elif command == SmppCommand.UNBIND:
                    await self.send(bytes(UnbindResp(sequence_num=sequence).pdu()))
                    reason = "the SMSC unbound"
                    break
                elif command != SmppCommand.ALERT_NOTIFICATION:
                    nack = GenericNack(sequence_num=sequence, command_status=SmppCommandStatus(RINVCMDID))
                    await self.send(bytes(nack.pdu()))
        except asyncio.IncompleteReadError:
            pass
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc!r}"
        except (NotSent, Lost):
            reason = "connection lost while answering the SMSC"
        self.close(reason)

    def close(self, reason: str) -> None:
        """Mark the link down (once), fail what awaits a response, close the socket, stop its tasks."""
        if self.closed.done():
            return
        self.closed.set_result(reason)
        for answer in self.pending.values():
            if not answer.done():
                answer.set_exception(Lost(reason))
        self.pending.clear()
        self.writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def wait_closed(self) -> None:
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

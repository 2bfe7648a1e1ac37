"""The MIME around MM7's SOAP: packing the SOAP part and the MM content into ``multipart/related`` (what the
gateway sends), and splitting a body an MMSC sent into its SOAP XML and its other parts.

Packing is written by hand rather than by ``email.generator``: the generator rewrites line ends inside binary
payloads, which would corrupt ``Content-Transfer-Encoding: binary`` media. CRLF line ends; the SOAP part and
the content are wrapped in ``multipart/related; type="text/xml"; start="<...>"``; the content itself is
multipart/related led by its SMIL, or multipart/mixed without one.

Splitting is lenient: Content-IDs with or without ``<>``; no ``start`` (the first text/xml part is the SOAP
part); no boundary declared, or not the one the body uses (the body's first line says it); base64,
quoted-printable or binary transfer encodings; a body that is bare XML whatever its Content-Type says.
Anything that cannot be read raises :class:`Mm7ParseError` saying why.

The underscored names are the codec's own: :mod:`.build` and :mod:`.parse` use them, nothing outside the MM7
codec (but the MMSC side the tests play) should.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from email import policy
from email.message import Message
from email.parser import BytesParser

from mmsgate.carriers.mm7.records import Mm7ParseError, Mm7Part
from mmsgate.core.mms import SMIL_CONTENT_ID, SMIL_CONTENT_TYPE

SOAP_START = "soap-start"
"""Content-ID of the SOAP part of a request the gateway builds (the ``start`` of the outer multipart)."""

CONTENT_START = "mms-content"
"""Content-ID of the MM content part of a request the gateway builds (``Content@href`` is ``cid:`` this)."""

_CRLF = b"\r\n"
_TOKEN_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII without space, '<' and '>'

# ------------------------------------------------------------------------------------------------- packing


def _header_value(value: str) -> str:
    if not value.isascii() or any(c in value for c in "\r\n\0"):
        raise ValueError(f"not usable in a MIME header: {value!r}")
    return value


def _entity(headers: Sequence[tuple[str, str]], data: bytes) -> bytes:
    head = b"".join(f"{name}: {_header_value(value)}".encode("ascii") + _CRLF for name, value in headers)
    return head + _CRLF + data


def _multipart(entities: Sequence[bytes]) -> tuple[str, bytes]:
    """(boundary, body) of a multipart holding the entities; the boundary occurs in none of them."""
    while True:
        # '=_' cannot occur in base64 or quoted-printable text, and the random part makes binary collisions
        # astronomically unlikely; the check makes them impossible
        boundary = f"=_mm7_{secrets.token_hex(12)}"
        marker = boundary.encode("ascii")
        if not any(marker in entity for entity in entities):
            break
    body = b"".join(b"--" + marker + _CRLF + entity + _CRLF for entity in entities)
    return boundary, body + b"--" + marker + b"--" + _CRLF


def _media(part: Mm7Part, binary: bool) -> bytes:
    headers = [("Content-Type", part.content_type)]
    if part.content_id is not None:
        if not _TOKEN_ID.fullmatch(part.content_id):
            raise ValueError(f"not usable as a Content-ID: {part.content_id!r}")
        headers.append(("Content-ID", f"<{part.content_id}>"))
    if part.location is not None:
        headers.append(("Content-Location", part.location))
    if binary:
        headers.append(("Content-Transfer-Encoding", "binary"))
        return _entity(headers, part.data)
    headers.append(("Content-Transfer-Encoding", "base64"))
    encoded = base64.b64encode(part.data)
    return _entity(headers, _CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76)))


def content_entity(smil: str | None, parts: Sequence[Mm7Part], binary: bool) -> tuple[str, bytes]:
    """(Content-Type, body) of the MM content: multipart/related led by the SMIL, or multipart/mixed without."""
    ids = [p.content_id for p in parts if p.content_id is not None]
    if smil is not None:
        ids.append(SMIL_CONTENT_ID)
    if len(ids) != len(set(ids)):
        raise ValueError(f"Content-IDs repeat in {ids}")
    entities = [_media(p, binary) for p in parts]
    if smil is None:
        boundary, body = _multipart(entities)
        return f'multipart/mixed; boundary="{boundary}"', body
    smil_part = Mm7Part(f"{SMIL_CONTENT_TYPE}; charset=utf-8", smil.encode(), SMIL_CONTENT_ID, None)
    boundary, body = _multipart([_media(smil_part, binary), *entities])
    return f'multipart/related; type="{SMIL_CONTENT_TYPE}"; start="<{SMIL_CONTENT_ID}>"; boundary="{boundary}"', body


def with_content(xml: bytes, content_type: str, content: bytes) -> tuple[bytes, str]:
    soap = _entity(
        [
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-ID", f"<{SOAP_START}>"),
            ("Content-Transfer-Encoding", "binary"),
        ],
        xml,
    )
    mm = _entity([("Content-Type", content_type), ("Content-ID", f"<{CONTENT_START}>")], content)
    boundary, body = _multipart([soap, mm])
    return body, f'multipart/related; type="text/xml"; start="<{SOAP_START}>"; boundary="{boundary}"'


# ------------------------------------------------------------------------------------------------- splitting

_XML_TYPES = frozenset({"text/xml", "application/xml", "application/soap+xml"})
_MAX_DEPTH = 4


def bare_id(value: str | None) -> str | None:
    """A Content-ID or start parameter without its angle brackets."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


def part_header(part: Message, name: str) -> str | None:
    value = part.get(name)
    return None if value is None else " ".join(str(value).split())


def _content_type_header(content_type: str | None) -> Message | None:
    if content_type is None:
        return None
    holder = Message()
    holder["Content-Type"] = " ".join(content_type.split())  # unfolds, and keeps CR/LF from injecting headers
    return holder


def header_param(header: Message, name: str) -> str | None:
    value = header.get_param(name)
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return None if value is None else str(value)


def _boundary_from_body(body: bytes) -> str | None:
    """The boundary of a multipart body whose Content-Type did not say (its first line is ``--boundary``)."""
    first = body.split(b"\n", 1)[0].strip()
    if not first.startswith(b"--") or len(first) < 3 or len(first) > 72:
        return None
    try:
        boundary = first[2:].decode("ascii")
    except UnicodeDecodeError:
        return None
    return boundary if '"' not in boundary and "\\" not in boundary else None


def _is_xml(payload: bytes) -> bool:
    return payload.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise Mm7ParseError(f"a {part.get_content_type()} part has no readable body")
    return data


def split_parts(body: bytes, content_type: str | None) -> tuple[bytes, tuple[Message, ...]]:
    """(the SOAP XML, the other top-level parts) of an HTTP body."""
    if not body.strip():
        raise Mm7ParseError("the body is empty")
    if _is_xml(body):  # bare XML, whatever the Content-Type says (Skycore sends reports as 'multipart/related')
        return body, ()
    header = _content_type_header(content_type)
    start: str | None = None
    boundary: str | None = None
    if header is not None and header.get_content_maintype() == "multipart":
        start = bare_id(header_param(header, "start"))
        boundary = header_param(header, "boundary")
    # the declared boundary, else (none declared, or it is not in the body) the one the body starts with
    boundaries = [b for b in dict.fromkeys((boundary, _boundary_from_body(body))) if b]
    if not boundaries:
        raise Mm7ParseError(f"the body is neither XML nor MIME multipart (Content-Type {content_type!r})")
    parts: tuple[Message, ...] = ()
    for boundary in boundaries:
        envelope = b'Content-Type: multipart/related; boundary="' + boundary.encode("ascii", "replace") + b'"\r\n\r\n'
        # compat32 hands back header values as sent (the email policies re-render them, quoting parameters)
        parts = tuple(_subparts(BytesParser(policy=policy.compat32).parsebytes(envelope + body)))
        if parts:
            break
    else:
        raise Mm7ParseError(f"no MIME part found with boundary {' or '.join(map(repr, boundaries))}")
    soap = _soap_part(parts, start)
    return _payload(soap), tuple(p for p in parts if p is not soap)


def _soap_part(parts: Sequence[Message], start: str | None) -> Message:
    if start is not None:
        for part in parts:
            if bare_id(part_header(part, "Content-ID")) == start:
                return part
    for part in parts:
        if part.get_content_type() in _XML_TYPES:
            return part
    for part in parts:
        if not part.is_multipart() and _is_xml(_payload(part)):
            return part
    raise Mm7ParseError("no SOAP part: nothing matches the start parameter and no part is XML")


def _subparts(part: Message) -> list[Message]:
    payload = part.get_payload() if part.is_multipart() else None
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def leaves(part: Message, depth: int = 0) -> list[Message]:
    if not part.is_multipart():
        return [part]
    if depth >= _MAX_DEPTH:
        raise Mm7ParseError("the content is nested too deeply")
    return [leaf for sub in _subparts(part) for leaf in leaves(sub, depth + 1)]


def mm7_part(part: Message) -> Mm7Part:
    return Mm7Part(
        content_type=part_header(part, "Content-Type") or "text/plain",
        data=_payload(part),
        content_id=bare_id(part_header(part, "Content-ID")),
        location=part_header(part, "Content-Location"),
    )

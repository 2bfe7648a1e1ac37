"""``mmsgate mm7 add``: an MM7 connection MMS go out on (a carrier's MMSC); ``list`` and ``remove`` are the
command line's own, the same for every kind of connection.

Connections live in the store, so every worker process (and a running ``serve``) picks up a change
within ``connection_refresh_seconds``. A message goes to the connection with the longest route prefix
matching its recipient; a connection without prefixes takes every number; with none, the message goes to
the default carrier (the sandbox). The connection's VASP endpoint, where its MMSC sends delivery reports
and inbound MMS, is ``POST /mm7/NAME`` with the inbound credentials.
"""

from __future__ import annotations

import click

from mmsgate.carriers.mm7.settings import MM7, Mm7Connection
from mmsgate.carriers.mm7.status import DEFAULT_VERSION, VERSIONS
from mmsgate.carriers.plugin import CommandKit, EdgePorts, Shown
from mmsgate.core.passwords import hash_password


def commands(kit: CommandKit) -> list[click.Command]:
    @click.command("add")
    @click.argument("name")
    @click.option("--url", required=True, help="the MMSC's MM7 URL")
    @click.option("--vasp-id", required=True)
    @click.option("--vas-id", required=True)
    @click.option("--username", default=None, help="HTTP Basic user for the MMSC")
    @click.option("--password", default=None, help="HTTP Basic password for the MMSC")
    @click.option("--version", type=click.Choice(list(VERSIONS)), default=DEFAULT_VERSION, show_default=True)
    @click.option(
        "--tps", type=click.IntRange(0), default=0, help="most submits per second over every process; 0: none"
    )
    @click.option(
        "--max-size", type=click.IntRange(0), default=0, help="largest MMS in bytes; 0: the carrier profile's"
    )
    @click.option("--route-prefix", "prefixes", multiple=True, help="numbers starting with it go here (repeatable)")
    @click.option("--inbound-username", default=None, help="what the MMSC must send to POST /mm7/NAME")
    @click.option("--inbound-password", default=None, help="stored hashed")
    @click.option("--soap-action", default="", help='the SOAPAction header\'s value (default "")')
    @click.option(
        "--timeout",
        "answer_within",
        type=click.FloatRange(0.1, 600),
        default=30.0,
        show_default=True,
        help="seconds an MMSC has to answer a submit",
    )
    @kit.admin
    async def add(
        ports: EdgePorts,
        name: str,
        url: str,
        vasp_id: str,
        vas_id: str,
        username: str | None,
        password: str | None,
        version: str,
        tps: int,
        max_size: int,
        prefixes: tuple[str, ...],
        inbound_username: str | None,
        inbound_password: str | None,
        soap_action: str,
        answer_within: float,
    ) -> Shown:
        """Add an MM7 connection named NAME."""
        settings = Mm7Connection(
            url=url,
            vasp_id=vasp_id,
            vas_id=vas_id,
            username=username,
            password=password,
            version=version,
            tps=tps,
            max_size=max_size,
            route_prefixes=tuple(p.lstrip("+") for p in prefixes),
            inbound_username=inbound_username,
            inbound_password_hash=hash_password(inbound_password) if inbound_password is not None else None,
            soap_action=soap_action,
            timeout=answer_within,
        )
        return await kit.add_connection(ports, MM7, name, settings)

    return [add]

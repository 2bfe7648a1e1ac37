"""The ``mmsgate`` command: run the gateway and administer accounts, keys, campaigns, numbers and carrier
connections; send through the API from the shell.

Every command takes its settings from ``--data-dir`` / ``--database`` or ``MMSGATE_*`` variables; admin
commands print one JSON object with ``--json`` and work while ``serve`` runs. The commands are defined in
the modules beside this one and registered here: :mod:`.running`, :mod:`.accounts`, :mod:`.postbacks`,
:mod:`.send`, and :mod:`.connections` (one group per carrier plug-in).
"""

from __future__ import annotations

import logging
import os

import click

from mmsgate.cli import accounts, connections, postbacks, running, send


@click.group()
@click.version_option(package_name="mmsgate")
def main() -> None:
    """mmsgate: a self-hosted MMS gateway speaking the Sinch MMS JSON API."""
    logging.basicConfig(level=os.environ.get("MMSGATE_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s %(message)s")
    for noisy in ("yoyo", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


for _command in (
    *running.COMMANDS,
    *accounts.COMMANDS,
    *postbacks.COMMANDS,
    *send.COMMANDS,
    *connections.plugin_groups(),
):
    main.add_command(_command)

__all__ = ["main"]

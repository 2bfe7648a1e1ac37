"""The SMSC test peer (tests/peers/smsc-sim.js, on the npm ``smpp`` package) as a subprocess.

``await Smsc(env).start()`` starts it on a free loopback port (``port``), collects the JSON events it
prints (``events``), takes commands (``send``) and waits on events (``wait_for``); ``stop`` kills it by
PID. Without ``node`` or tests/peers/node_modules the test is skipped, saying why (failed under CI=true).
The process handling is tests/peer_process.py's.
"""

from __future__ import annotations

from tests import peer_process
from tests.peer_process import PEERS, START_TIMEOUT, Event, PeerProcess

__all__ = ["PACKAGES", "PEERS", "SCRIPT", "START_TIMEOUT", "Event", "Smsc", "node_or_skip"]

SCRIPT = PEERS / "smsc-sim.js"
PACKAGES = ("smpp",)


def node_or_skip() -> str:
    """The ``node`` executable; skips the test (fails it under CI) when the peer cannot run."""
    return peer_process.node_or_skip(Smsc.name, PACKAGES)


class Smsc(PeerProcess):
    name = "SMSC"
    script = SCRIPT
    packages = PACKAGES
    env_prefixes = ("SMSC_", "THROTTLE_", "RECEIPT_")
    port_variable = "SMSC_PORT"
    line_limit = 1 << 20

    def accepted(self, text: str | None = None) -> list[Event]:
        """Submits the peer took (answered ESME_ROK), of one text if given."""
        return [e for e in self.of("submit", status=0) if text is None or e.get("text") == text]

"""The MMSC test peer (tests/peers/mmsc-sim.js: MM7 on emailjs-mime-parser + fast-xml-parser) as a subprocess.

``await Mmsc(env).start()`` starts it on a free loopback port (``port``, ``url``), collects the JSON events it
prints (``events``), takes commands (``send``; ``set_vasp`` waits for the peer to take the VASP URL) and waits
on events (``wait_for``, ``gather``); ``stop`` kills its process group. Without ``node`` or the npm packages in
tests/peers/node_modules the test is skipped, saying why (failed under CI=true). The process handling is
tests/peer_process.py's.
"""

from __future__ import annotations

from tests import peer_process
from tests.peer_process import PEERS, START_TIMEOUT, Event, PeerProcess

__all__ = ["ENV_PREFIXES", "PACKAGES", "PEERS", "SCRIPT", "START_TIMEOUT", "Event", "Mmsc", "node_or_skip"]

SCRIPT = PEERS / "mmsc-sim.js"
PACKAGES = ("emailjs-mime-parser", "fast-xml-parser")
ENV_PREFIXES = ("MMSC_", "FAULT_", "DELAY_MS", "VASP_", "REPORT_", "MM7_NS")
"""The peer's settings: taken from this process's environment only when a test passes them."""


def node_or_skip() -> str:
    """The ``node`` executable; skips the test (fails it under CI) when the peer cannot run."""
    return peer_process.node_or_skip(Mmsc.name, PACKAGES)


class Mmsc(PeerProcess):
    name = "MMSC"
    script = SCRIPT
    packages = PACKAGES
    env_prefixes = ENV_PREFIXES
    port_variable = "MMSC_PORT"
    line_limit = 1 << 24

    @property
    def url(self) -> str:
        """The MM7 endpoint (the peer answers on any path)."""
        return f"http://127.0.0.1:{self.port}/mm7"

    async def set_vasp(self, url: str, username: str | None = None, password: str | None = None) -> None:
        """Where the peer posts reports and MO from now on; returns once it has taken it."""
        await self.send({"cmd": "vasp", "url": url, "username": username, "password": password})
        await self.wait_for(lambda e: e["event"] == "vasp_set" and e.get("url") == url, what="the VASP URL to be set")

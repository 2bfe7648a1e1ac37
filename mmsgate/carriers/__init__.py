"""Carriers: every protocol the gateway speaks with carriers is a plug-in of one shape
(:class:`~mmsgate.carriers.plugin.Plugin`), a folder here and one line of :data:`PLUGINS`.

``base`` holds the two interfaces a plug-in implements (:class:`~mmsgate.carriers.base.Carrier` for MMS,
:class:`~mmsgate.carriers.base.SmsConnector` for fallback SMS) and the sinks they hand back to;
``routing`` picks a message's connection by its number; ``throttle`` holds a connection to its
throughput over every process.
"""

from __future__ import annotations

from mmsgate.carriers import mm7, sandbox, smpp
from mmsgate.carriers.plugin import Plugin
from mmsgate.errors import ConfigError

PLUGINS: dict[str, Plugin] = {plugin.kind: plugin for plugin in (sandbox.PLUGIN, mm7.PLUGIN, smpp.PLUGIN)}
"""Every carrier plug-in, by kind."""


def plugin(kind: str) -> Plugin:
    """The plug-in of ``kind`` (:class:`~mmsgate.errors.ConfigError` for one there is none of)."""
    found = PLUGINS.get(kind)
    if found is None:
        raise ConfigError(f"unknown carrier {kind!r}: one of {', '.join(sorted(PLUGINS))}")
    return found


__all__ = ["PLUGINS", "Plugin", "plugin"]

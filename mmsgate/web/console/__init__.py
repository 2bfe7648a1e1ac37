"""The web console at ``/console``: messages with their timelines, virtual phones, test sends, templates.

See ``docs/console.md``. :class:`Console` builds the routes; ``mmsgate serve`` sets the password at its
first start (``mmsgate console password`` sets a new one).
"""

from mmsgate.web.console.routes import Console

__all__ = ["Console"]

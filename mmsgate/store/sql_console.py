"""The Store's console operations (the web console's pages: message lists, attempts, sessions). Same SQL
on both backends, like ``sql.py``."""

from __future__ import annotations

from mmsgate.store.sql_delivery import DeliverySql


class ConsoleSql(DeliverySql):
    """Console operations over the SQL primitives of :class:`SqlStore`."""

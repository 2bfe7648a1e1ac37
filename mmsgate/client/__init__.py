"""A small typed client for the MMS JSON API (``POST {base}/ep/v2/``), for mmsgate or any server of the same API.

Every request is first checked with :func:`mmsgate.contract.precheck.precheck`, the rules of the contract that need no
knowledge of the account, so a request the server would refuse for those rules is refused here, before anything is
sent (an :class:`ApiFailure` with ``status == 0``). A connection that could not be opened is tried again a few
times; a request that may have reached the server is never sent twice.

Usage::

    from mmsgate.client import Client, Slide

    with Client("mmsk_...", "http://127.0.0.1:8080") as client:
        accepted = client.send_mms(
            service_id="8040779936",
            to="15550100001",
            sender="28444",
            fallback_sms_text="You have a new picture message",
            slides=[Slide.image("https://example.com/cat.jpg", text="Hello")],
        )
        print(accepted.tracking_id, client.message(accepted.tracking_id)["state"])

In asynchronous code, use :class:`AsyncClient` the same way (``async with``, ``await client.send_mms(...)``).

The package imports nothing of the server: only the contract's rules (:mod:`mmsgate.contract`), the core
model and the error tree.
"""

from mmsgate.client.async_client import AsyncClient
from mmsgate.client.errors import ApiFailure, ClientError, TransportFailure
from mmsgate.client.slides import Slide
from mmsgate.client.sync_client import Client
from mmsgate.client.wire import Accepted

__all__ = ["Accepted", "ApiFailure", "AsyncClient", "Client", "ClientError", "Slide", "TransportFailure"]

"""The API contract's checks (sections 1, 2 and 6), as pure functions shared by the server and the client.

:mod:`~mmsgate.contract.fields` holds the limits and the rules of single fields, :mod:`~mmsgate.contract.numbers`
the phone numbers', :mod:`~mmsgate.contract.slides` the slides', :mod:`~mmsgate.contract.actions` the body and
the three actions (with the account), and :mod:`~mmsgate.contract.precheck` the rules a client applies before
sending (without it). The package imports nothing of the server, so that ``mmsgate.client`` may use it.
"""

from mmsgate.contract.actions import (
    Request,
    check_savemms,
    check_sendmms,
    check_sendsavedmms,
    check_template_usable,
    mms_id_of,
    parse_body,
)
from mmsgate.contract.numbers import normalise_number
from mmsgate.contract.precheck import precheck

__all__ = [
    "Request",
    "check_savemms",
    "check_sendmms",
    "check_sendsavedmms",
    "check_template_usable",
    "mms_id_of",
    "normalise_number",
    "parse_body",
    "precheck",
]

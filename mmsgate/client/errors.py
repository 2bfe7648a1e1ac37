"""The client's errors: one base, a failure the API answered (or would have), and a request left without answer."""

from __future__ import annotations


class ClientError(Exception):
    """Base of the client's errors; raised as such for an answer the client cannot make sense of."""


class ApiFailure(ClientError):
    """The server answered ``"status": "failure"`` (or a non-2xx status with an E-code), or the client
    refused the request before sending it because the server would have.

    ``code`` is the contract's E-code (``"E110"``), ``info`` the sentence naming the field and the problem,
    ``status`` the HTTP status of the answer: 200 for a failure answered by the server's API endpoint,
    0 when the client refused the request and nothing was sent."""

    def __init__(self, code: str, info: str, status: int) -> None:
        where = "refused before sending" if status == 0 else f"HTTP {status}"
        super().__init__(f"{code}: {info} ({where})")
        self.code = code
        self.info = info
        self.status = status


class TransportFailure(ClientError):
    """No answer was received.

    ``may_have_been_accepted`` is True when the request may have reached the server: for a send, the
    message may then have been accepted, and the client does not send it again (check with
    :meth:`AsyncClient.message` or a postback before sending it again yourself). It is False when the
    connection could not be opened at all (after the configured attempts), so nothing was sent. (For the
    status views, which change nothing, asking again is always safe.)"""

    def __init__(self, message: str, *, may_have_been_accepted: bool) -> None:
        super().__init__(message)
        self.may_have_been_accepted = may_have_been_accepted

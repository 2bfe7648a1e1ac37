"""The blocking client, :class:`Client`: an :class:`~mmsgate.client.async_client.AsyncClient` run on a private
event loop.

Its constructor and methods are derived from the asynchronous client's by typed wrappers (``ParamSpec`` and
``Concatenate``): mypy and ``inspect.signature`` see the same parameters, ``help`` the same docstrings, and no
signature is written twice.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from mmsgate.client.async_client import AsyncClient

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


def _same_parameters(
    source: Callable[Concatenate[Any, P], None],
) -> Callable[[Callable[Concatenate[S, ...], None]], Callable[Concatenate[S, P], None]]:
    """Give an ``__init__`` that passes everything on to ``source`` the parameters (and docstring) of ``source``.

    Typed, not checked: the decorated ``__init__`` must hand its arguments to what ``source`` initialises."""

    def decorate(init: Callable[Concatenate[S, ...], None]) -> Callable[Concatenate[S, P], None]:
        return functools.wraps(source, assigned=("__doc__",))(init)  # keeps its own name; signature from source

    return decorate


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Client, P], T]:
    """The method of :class:`AsyncClient` as a method of :class:`Client`, which runs it on the client's event loop
    until it ends: same name, parameters and docstring."""

    @functools.wraps(method, assigned=("__name__", "__doc__"))  # inspect.signature follows __wrapped__
    def blocking(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._client, *args, **kwargs))

    blocking.__qualname__ = f"Client.{method.__name__}"
    return blocking


class Client:
    """The blocking client: :class:`AsyncClient`'s methods, run on a private event loop.

    Call it from code that is not running an event loop (in asynchronous code, use :class:`AsyncClient`,
    or this one through ``asyncio.to_thread``), and from one thread at a time. Close it with :meth:`close`
    or use it as ``with``."""

    @_same_parameters(AsyncClient.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._client = AsyncClient(*args, **kwargs)
        self._runner = asyncio.Runner()
        self._closed = False

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._runner.run(coroutine)
        coroutine.close()
        raise RuntimeError(
            "Client blocks, and this thread is running an event loop: use AsyncClient, or asyncio.to_thread"
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections and its event loop (closing it again does nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._client.aclose())
        finally:
            self._runner.close()

    send_mms = _blocking(AsyncClient.send_mms)
    save_mms = _blocking(AsyncClient.save_mms)
    send_saved_mms = _blocking(AsyncClient.send_saved_mms)
    message = _blocking(AsyncClient.message)
    template = _blocking(AsyncClient.template)

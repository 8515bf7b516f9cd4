"""How a decision meets I/O: flows that yield what they need, and the two runners.

A decision that needs I/O (a store read, a rate-limit hit on Redis, the kernel's socket
table, an audit write) is written once, as a generator that *yields* a ``Need`` and
receives its result, the way httpx's ``Auth.auth_flow`` yields requests and receives
responses. The flow itself does no I/O, so one logic serves both worlds:

- ``run_sync`` (WSGI, the CLI) runs each ``Need`` where it stands;
- ``run_async`` (ASGI, forward auth, the gateway) runs it in a worker thread, so the
  event loop never waits on the store, unless the ``Need`` says it is memory-only (a
  limiter in memory counts on the loop).

A step that memory answers is not a flow at all: ``Step`` is either the answer or the
flow that finds it, and both runners hand an answer straight back, so a request that
memory decides never leaves the event loop and never builds a generator.

An exception raised by a ``Need`` is thrown into the flow at its ``yield``, so the flow
decides what a failed read means (``NotReady`` becomes a 503, for example).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from types import GeneratorType
from typing import Any, TypeAlias, TypeVar

import anyio.to_thread

__all__ = ["Flow", "Need", "Step", "run_async", "run_sync"]

T = TypeVar("T")


class Need:
    """One piece of I/O a flow asks for: ``call()``'s result is sent back into the flow.
    ``in_memory``: it touches nothing but this process's memory, so an async runner may
    run it on the event loop."""

    __slots__ = ("call", "in_memory")

    def __init__(self, call: Callable[[], Any], *, in_memory: bool = False) -> None:
        self.call = call
        self.in_memory = in_memory

    def __repr__(self) -> str:
        return f"Need({self.call!r}, in_memory={self.in_memory})"


Flow: TypeAlias = Generator[Need, Any, T]
# The answer itself, or the flow that finds it.
Step: TypeAlias = T | Flow[T]


def run_sync(step: Step[T]) -> T:
    """Drive ``step`` to its answer, running each ``Need`` in this thread."""
    if not isinstance(step, GeneratorType):
        return step  # type: ignore[return-value]
    flow: Flow[T] = step
    try:
        need = next(flow)
        while True:
            try:
                result = need.call()
            except Exception as exc:
                need = flow.throw(exc)
            else:
                need = flow.send(result)
    except StopIteration as done:
        answer: T = done.value
        return answer


async def run_async(step: Step[T]) -> T:
    """Drive ``step`` to its answer; each ``Need`` that is not memory-only runs in a
    worker thread."""
    if not isinstance(step, GeneratorType):
        return step  # type: ignore[return-value]
    flow: Flow[T] = step
    try:
        need = next(flow)
        while True:
            try:
                if need.in_memory:
                    result = need.call()
                else:
                    result = await anyio.to_thread.run_sync(need.call)
            except Exception as exc:
                need = flow.throw(exc)
            else:
                need = flow.send(result)
    except StopIteration as done:
        answer: T = done.value
        return answer

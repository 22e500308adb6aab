"""Ctrl-C for the commands that run until it comes: ``demo``, ``receive --follow``, ``top``.

Python turns SIGINT into :class:`KeyboardInterrupt` wherever the main thread
happens to be, and that may be inside a finalizer (a weakref callback, a
``__del__``), where CPython prints "Exception ignored" and carries on as if
nothing had happened.  A command that promises exit status 130 on Ctrl-C
cannot rely on the exception arriving at a good place.

So these commands handle SIGINT themselves, as trio and ``asyncio.Runner``
do: for as long as the command runs, the handler only records the interrupt
and writes a byte to a pipe.  Code that waits watches the pipe: under anyio a
task waits for it to become readable and cancels the run's cancel scope (a
cancelled ``receive`` left its message in the queue); ``top`` selects on it
beside the terminal.  The command then ends at a point of its own choosing
with status 130.

The handler itself runs only when the main thread next runs Python code.  A
signal that comes just before an event loop goes to sleep (or, with threads
about, one the kernel hands to another thread) would leave the loop asleep:
so the pipe is also the process's wakeup descriptor
(:func:`signal.set_wakeup_fd`), written by the C-level handler at once, as
asyncio does for the signals it handles.  trio sets its own, and warns if it
finds one set, so under trio the pipe steps aside while trio runs.

``anyio.open_signal_receiver`` is not enough here: it covers only the time an
event loop runs, not the start of a command, the gaps between the demo's
loops, or its cleanup; and asyncio's ``remove_signal_handler`` puts back
``signal.default_int_handler`` rather than the handler it replaced.  A
handler installed before the loop starts also keeps trio and asyncio's
runner from installing theirs (they do only over the default one).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self

T = TypeVar("T")


class Interrupt:
    """While in its ``with`` block, SIGINT sets :attr:`caught` and makes :meth:`fileno` readable."""

    def __init__(self) -> None:
        #: Whether Ctrl-C came (it stays True).
        self.caught = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous: Any = None
        self._previous_wakeup = -1

    def __enter__(self) -> Self:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        self._previous_wakeup = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        signal.signal(signal.SIGINT, self._previous)
        os.close(self._read)
        os.close(self._write)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Never raises: it may run inside any finalizer.
        self.caught = True
        try:
            os.write(self._write, b"\0")
        except OSError:
            pass  # the pipe is full: it is readable already

    def fileno(self) -> int:
        """A descriptor that becomes readable when Ctrl-C comes (until :meth:`discard`).

        Other signals that have Python handlers make it readable too: call
        :meth:`discard`, then look at :attr:`caught` (in that order, or a
        Ctrl-C whose handler runs in between is read away unseen).
        """
        return self._read

    def discard(self) -> None:
        """Read away what signals wrote; :attr:`caught` is not changed."""
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def run(
        self,
        func: Callable[..., Awaitable[T]],
        *args: Any,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> T:
        """``anyio.run(func, *args)``, cancelled by Ctrl-C; what *func* raises
        comes out as it was raised, not in an exception group.

        :raises KeyboardInterrupt: Ctrl-C came before or while it ran,
            whatever else the cancellation made *func* raise.
        """
        import anyio

        result: list[T] = []

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._cancel_when_caught, tg.cancel_scope)
                result.append(await func(*args))
                tg.cancel_scope.cancel()

        if self.caught:
            raise KeyboardInterrupt
        # trio wakes on signals by its own descriptor, and warns if one is set.
        wakeup = signal.set_wakeup_fd(-1) if backend == "trio" else -1
        try:
            anyio.run(main, backend=backend, backend_options=backend_options)
        except BaseException as exc:
            if self.caught:
                raise KeyboardInterrupt from None
            # The task group wraps what *func* raised: give it back as it was.
            inner = getattr(exc, "exceptions", None)
            if isinstance(inner, tuple) and len(inner) == 1:
                raise inner[0] from None
            raise
        finally:
            if wakeup != -1:
                signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)
        if self.caught:
            raise KeyboardInterrupt
        return result[0]

    async def _cancel_when_caught(self, scope: Any) -> None:
        import anyio

        # The handler sets `caught` before it writes, and it writes on every
        # Ctrl-C: a byte read away here while `caught` was still False is
        # followed by another.
        while not self.caught:
            await anyio.wait_readable(self._read)
            self.discard()
        scope.cancel()


def is_interrupt(exc: BaseException) -> bool:
    """Whether *exc* is Ctrl-C: KeyboardInterrupt, alone or in exception groups.

    trio delivers KeyboardInterrupt to a task, so it may come out of a
    nursery wrapped in a :class:`BaseExceptionGroup`.
    """
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return isinstance(inner, tuple) and any(
        isinstance(e, BaseException) and is_interrupt(e) for e in inner
    )

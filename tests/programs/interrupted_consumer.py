"""A consumer stopped by Ctrl-C again and again while a producer keeps its queue full.

    python interrupted_consumer.py NAME MODE STRATEGY ROUNDS

MODE is ``sync``, or an anyio backend: ``asyncio``, ``uvloop`` or ``trio``
(STRATEGY, ``poll`` or ``thread``, is for those).  Run by tests/test_edges.py.

SIGINT is blocked in the main thread and sent to a helper thread, so the
Python handler runs in the main thread at the next point where CPython looks
for signals: often right after a C call returns, when the kernel has just
handed a message over.  The handler raises KeyboardInterrupt only inside the
package (what the program does with a message once the library returned it
is the program's business) and never inside a finalizer (CPython only prints
what a finalizer raises); elsewhere the helper sends the signal again.

Each round opens the queue, consumes until interrupted, and closes it, which
may raise PutBackError: the program keeps those messages, as a careful user
would, and also those that a collected queue or a put-back thread reports.
At the end it stops the producer, drains the queue, and prints one JSON
line: how many were sent, every message it got, and what happened.
"""

from __future__ import annotations

import gc
import json
import os
import random
import signal
import sys
import threading
import time
import warnings
from typing import Any, Literal

import anyio

import anyposixmq

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup
from anyposixmq import AsyncMessageQueue, MessageQueue, PutBackError

PACKAGE = os.path.dirname(os.path.abspath(anyposixmq.__file__))

name, mode, rounds = sys.argv[1], sys.argv[2], int(sys.argv[4])
strategy: Literal["poll", "thread"] = "thread" if sys.argv[3] == "thread" else "poll"
got: list[bytes] = []
counts = {"interrupts": 0, "put_back_errors": 0, "reported": 0}
stop = threading.Event()
want = threading.Event()  # an interrupt is due: the helper sends SIGINT until it lands
#: Interrupts left in this round: one while consuming, sometimes a second that
#: lands in what the first one set off (closing, putting back).
allowance = [0]


def keep(exc: BaseException | None) -> bool:
    """Keep the messages of a PutBackError (or of one it carries as context)."""
    while exc is not None:
        if isinstance(exc, PutBackError):
            got.extend(m.data for m in exc.messages)
            counts["put_back_errors"] += 1
            return True
        if isinstance(exc, BaseExceptionGroup):
            kept = [keep(e) for e in exc.exceptions]  # every one, not just the first
            return any(kept)
        exc = exc.__context__
    return False


def unraisable(args: Any) -> None:  # a collected queue's PutBackError
    if keep(args.exc_value):
        counts["reported"] += 1
    else:
        sys.__unraisablehook__(args)


def thread_error(args: Any) -> None:  # a put-back thread's PutBackError
    if keep(args.exc_value):
        counts["reported"] += 1
    else:
        threading.__excepthook__(args)


sys.unraisablehook = unraisable
threading.excepthook = thread_error
warnings.simplefilter("ignore", ResourceWarning)  # a queue that KeyboardInterrupt left open


def in_package(frame: Any) -> bool:
    if frame is None or not frame.f_code.co_filename.startswith(PACKAGE):
        return False
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return False
        frame = frame.f_back
    return True


def handler(signum: int, frame: Any) -> None:
    if want.is_set() and in_package(frame):
        want.clear()
        allowance[0] -= 1
        counts["interrupts"] += 1
        raise KeyboardInterrupt


def interrupter() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    me = threading.get_ident()
    while not stop.is_set():
        if not want.is_set():
            if allowance[0] <= 0:
                time.sleep(0.001)
                continue
            time.sleep(random.uniform(0.0005, 0.004))
            want.set()
        signal.pthread_kill(me, signal.SIGINT)
        time.sleep(0.0002)


def producer(sent: list[int]) -> None:
    with MessageQueue(name, read=False, write=True) as out:
        i = 0
        while not stop.is_set():
            try:
                out.send(b"%d" % i, i % 3, timeout=0.05)
            except TimeoutError:
                continue
            i += 1
        sent.append(i)


def consume_sync(read_only: bool) -> None:
    with MessageQueue(name, write=not read_only) as mq:
        for msg in mq:
            got.append(msg.data)


async def consume_async() -> None:
    async with AsyncMessageQueue(name, strategy=strategy) as q:
        async for msg in q:
            got.append(msg.data)


def one_round(index: int) -> None:
    if mode == "sync":
        consume_sync(read_only=index % 2 == 1)
    else:
        options = {"use_uvloop": True} if mode == "uvloop" else {}
        backend = "asyncio" if mode == "uvloop" else mode
        anyio.run(consume_async, backend=backend, backend_options=options)


def main() -> None:
    signal.signal(signal.SIGINT, handler)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    sent: list[int] = []
    threads = [
        threading.Thread(target=producer, args=(sent,)),
        threading.Thread(target=interrupter),
    ]
    for thread in threads:
        thread.start()
    try:
        done = 0
        while done < rounds:
            allowance[0] = 2 if random.random() < 0.3 else 1
            try:
                one_round(done)
            except BaseException as exc:  # KeyboardInterrupt, or a group holding it
                if not keep(exc) and not isinstance(exc, (KeyboardInterrupt, BaseExceptionGroup)):
                    raise
                done += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # Queues that an interrupt left open put back what they hold when
    # collected, and their put-back threads run on: the exit would wait.
    gc.collect()
    for thread in threading.enumerate():
        if thread.name.startswith("anyposixmq put-back"):
            thread.join()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with MessageQueue(name) as rest:
        got.extend(m.data for m in rest.drain())
    result = {"sent": sent[0], "got": [int(x) for x in got], **counts}
    print(json.dumps(result))


main()

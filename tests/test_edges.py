"""Nothing lost at the edges: a message taken from the kernel and not yet handed
over, when the queue stays full, at close, at the interpreter's exit, and in
programs interrupted by Ctrl-C again and again.

A message kept this way goes back in the queue when there is room within
PUT_BACK_TIMEOUT; otherwise closing raises PutBackError holding it, and a
close that nobody calls (a collected queue, a put-back thread at exit)
reports it the way Python reports such errors.  Every test counts numbered
messages: none lost, none duplicated.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from _helpers import CHILD_CWD, MakeAsyncQueue, MakeQueue

import anyposixmq
from anyposixmq import PUT_BACK_TIMEOUT, Message, MessageQueue, PutBackError, _attempts

PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.fixture
def interrupted(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make the next plain receive raise KeyboardInterrupt right after its C call
    returned (as a signal handler's exception does); undone by calling the result."""
    real = _attempts._receive_plain

    def call(*args: Any) -> Any:
        real(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(_attempts, "_receive_plain", call)
    return monkeypatch.undo


def _keep_one(mq: MessageQueue, undo: Callable[[], None]) -> None:
    with pytest.raises(KeyboardInterrupt):
        mq.receive()
    undo()


def test_close_raises_put_back_error_when_the_queue_stays_full(
    make_queue: MakeQueue, interrupted: Callable[[], None]
) -> None:
    mq = make_queue(capacity=2)
    mq.send(b"0", 1)
    mq.send(b"1")
    _keep_one(mq, interrupted)
    other = make_queue(mq.name, create=False)
    other.send(b"2")  # full again: no room for the kept message
    with pytest.raises(PutBackError) as info:
        mq.close()
    assert info.value.messages == [Message(b"0", 1)]
    assert info.value.errno == errno.EAGAIN
    assert info.value.filename == mq.name
    assert "b'0'" in str(info.value)
    assert mq.closed
    mq.close()  # nothing left: closing again does nothing
    assert list(other.drain()) == [(b"1", 0), (b"2", 0)]


def test_close_puts_back_when_room_comes_within_the_wait(
    make_queue: MakeQueue, interrupted: Callable[[], None]
) -> None:
    mq = make_queue(capacity=2)
    mq.send(b"0")
    _keep_one(mq, interrupted)
    other = make_queue(mq.name, create=False)
    other.send(b"1")
    other.send(b"2")
    timer = threading.Timer(PUT_BACK_TIMEOUT / 4, lambda: taken.append(other.receive()))
    taken: list[Message] = []
    timer.start()
    mq.close()  # waits for the room the timer makes
    timer.join()
    assert taken == [(b"1", 0)]
    assert list(other.drain()) == [(b"2", 0), (b"0", 0)]


def test_a_read_only_queue_puts_back_through_its_name(
    make_queue: MakeQueue, interrupted: Callable[[], None]
) -> None:
    writer = make_queue()
    writer.send(b"0")
    reader = make_queue(writer.name, create=False, write=False)
    _keep_one(reader, interrupted)
    reader.close()
    assert list(writer.drain()) == [(b"0", 0)]


def test_the_with_block_hands_the_interrupted_message_over(
    make_queue: MakeQueue, interrupted: Callable[[], None]
) -> None:
    """Ctrl-C inside ``with MessageQueue(...) as q:`` while a producer keeps the
    queue full: closing cannot put the message back, and hands it over."""
    name = make_queue(capacity=1).name
    assert name is not None
    feeder = make_queue(name, create=False)
    feeder.send(b"0")

    def consume() -> None:
        with MessageQueue(name) as mq:
            try:
                mq.receive()
            finally:
                interrupted()
                feeder.send(b"1")  # the producer was faster

    with pytest.raises(PutBackError) as info:
        consume()
    assert isinstance(info.value.__context__, KeyboardInterrupt)
    assert info.value.messages == [Message(b"0", 0)]
    assert list(feeder.drain()) == [(b"1", 0)]


def test_a_collected_queue_reports_what_it_could_not_put_back(
    make_queue: MakeQueue, interrupted: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_queue(capacity=1).name
    assert name is not None
    feeder = make_queue(name, create=False)
    feeder.send(b"0")
    mq = MessageQueue(name)
    _keep_one(mq, interrupted)
    feeder.send(b"1")
    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: reported.append(args.exc_value))
    with pytest.warns(ResourceWarning):
        del mq  # the last reference: collected at once
    (exc,) = reported
    assert isinstance(exc, PutBackError)
    assert exc.messages == [Message(b"0", 0)]


def test_detach_refuses_to_leave_a_kept_message_behind(
    make_queue: MakeQueue, interrupted: Callable[[], None]
) -> None:
    mq = make_queue(capacity=1)
    mq.send(b"0")
    _keep_one(mq, interrupted)
    make_queue(mq.name, create=False).send(b"1")
    with pytest.raises(BlockingIOError, match="cannot detach"):
        mq.detach()
    assert not mq.closed
    assert mq.receive() == (b"0", 0)  # kept, and returned first
    fd = mq.detach()
    MessageQueue.from_fd(fd).close()


# -- the async layer --------------------------------------------------------------


@pytest.mark.anyio
async def test_aclose_closes_even_when_cancelled(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    await q.send(b"0")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.aclose()
    mq = q._waiter.mq
    assert mq.closed
    with pytest.raises(anyio.ClosedResourceError):
        await q.receive()
    with anyposixmq.MessageQueue(q.name or "") as again:
        assert list(again.drain()) == [(b"0", 0)]


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ["thread"])
async def test_aclose_puts_back_what_a_worker_took(
    make_async_queue: MakeAsyncQueue, make_queue: MakeQueue
) -> None:
    q = make_async_queue(capacity=1)
    feeder = make_queue(q.name, create=False)
    feeder.send(b"0")
    # What a worker does when its task gave up meanwhile: the message waits in
    # the stash for the next receive.
    stashed = q._waiter.mq.receive()
    q._waiter._stash.append(stashed)  # type: ignore[attr-defined]
    feeder.send(b"1")
    with anyio.CancelScope() as scope:
        scope.cancel()  # a cancelled aclose() still puts back (or raises)
        with pytest.raises(PutBackError) as info:
            await q.aclose()
    assert info.value.messages == [Message(b"0", 0)]
    assert q._waiter.mq.closed
    assert list(feeder.drain()) == [(b"1", 0)]


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ["thread"])
async def test_aclose_puts_back_when_room_comes(
    make_async_queue: MakeAsyncQueue, make_queue: MakeQueue
) -> None:
    q = make_async_queue(capacity=1)
    feeder = make_queue(q.name, create=False)
    feeder.send(b"0")
    q._waiter._stash.append(q._waiter.mq.receive())  # type: ignore[attr-defined]
    feeder.send(b"1")
    taken: list[Message] = []
    timer = threading.Timer(PUT_BACK_TIMEOUT / 4, lambda: taken.append(feeder.receive()))
    timer.start()
    await q.aclose()
    timer.join()
    assert taken == [(b"1", 0)]
    assert list(feeder.drain()) == [(b"0", 0)]


# -- whole programs -----------------------------------------------------------------


def _run(script: str, *args: object, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROGRAMS / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=CHILD_CWD,
    )


MODES = [
    pytest.param("sync", "-", id="sync"),
    *(
        pytest.param(backend, strategy, id=f"{backend}-{strategy}")
        for backend in ("asyncio", "uvloop", "trio")
        for strategy in ("poll", "thread")
    ),
]


@pytest.mark.parametrize(
    "rounds",
    [
        pytest.param(6, id="short"),
        # A put-back that finds the queue full waits PUT_BACK_TIMEOUT (1 s), in
        # about half the rounds: a long run takes 30-65 s on a quiet machine.
        pytest.param(60, id="long", marks=[pytest.mark.stress, pytest.mark.timeout(300)]),
    ],
)
@pytest.mark.parametrize(("mode", "strategy"), MODES)
def test_ctrl_c_again_and_again_with_a_full_queue(
    mode: str, strategy: str, rounds: int, make_queue: MakeQueue
) -> None:
    """A producer keeps the queue full; Ctrl-C stops the consumer again and
    again, right after the kernel handed it a message as often as not, and
    sometimes again while it closes.  Every number comes out exactly once:
    consumed, in a PutBackError, or left in the queue."""
    name = make_queue(capacity=4, max_message_size=32).name
    result = _run("interrupted_consumer.py", name, mode, strategy, rounds)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    got = Counter(report["got"])
    assert [n for n, times in got.items() if times > 1] == [], "duplicated"
    assert sorted(set(range(report["sent"])) - set(got)) == [], "lost"
    assert len(got) == report["sent"]
    assert report["interrupts"] >= rounds


EXIT_PROGRAM = """
import sys, threading, warnings, anyio, anyposixmq

name, room = sys.argv[1], sys.argv[2] == "room"
feeder = anyposixmq.MessageQueue(name)

async def main():
    q = anyposixmq.AsyncMessageQueue(name, strategy="thread")
    # A worker took "0" after its task gave up: it waits in the stash.
    q._waiter._stash.append(q._waiter.mq.receive())
    feeder.send(b"1")  # and the queue is full again
    warnings.simplefilter("ignore", ResourceWarning)
    del q  # never closed: collected

anyio.run(main)
if room:  # room comes, but only after the program has ended
    threading.Timer(0.3, lambda: print(feeder.receive().data.decode())).start()
"""


@pytest.mark.parametrize("room", ["room", "full"])
def test_a_put_back_at_exit_is_waited_for(room: str, make_queue: MakeQueue) -> None:
    """The thread strategy's put-back of an object nobody closed holds the
    interpreter's exit for its bounded wait, and reports what found no room."""
    mq = make_queue(capacity=1)
    mq.send(b"0")
    result = subprocess.run(
        [sys.executable, "-c", EXIT_PROGRAM, mq.name or "", room],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )
    assert result.returncode == 0, result.stderr
    if room == "room":
        assert result.stdout.split() == ["1"]
        assert list(mq.drain()) == [(b"0", 0)]
        assert result.stderr == ""
    else:
        assert "PutBackError" in result.stderr
        assert "Message(data=b'0', priority=0)" in result.stderr
        assert list(mq.drain()) == [(b"1", 0)]

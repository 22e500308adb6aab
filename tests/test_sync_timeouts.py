"""Timeouts (monotonic, TimeoutError vs BlockingIOError, O_NONBLOCK left alone) and signals."""

from __future__ import annotations

import fractions
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _helpers import CHILD_CWD, MakeQueue, unique_name

import anyposixmq
from anyposixmq import MessageQueue


def test_timeout_none_waits_for_a_message(mq: MessageQueue) -> None:
    timer = threading.Timer(0.2, mq.send, (b"late", 2))
    timer.start()
    try:
        assert mq.receive() == (b"late", 2)
    finally:
        timer.join()


def test_timeout_returns_as_soon_as_a_message_comes(mq: MessageQueue) -> None:
    timer = threading.Timer(0.2, mq.send, (b"soon", 1))
    started = time.monotonic()
    timer.start()
    try:
        assert mq.receive(timeout=30) == (b"soon", 1)
    finally:
        timer.join()
    assert time.monotonic() - started < 20


def test_send_timeout_returns_when_room_is_made(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=1)
    mq.send(b"full")
    timer = threading.Timer(0.2, mq.receive)
    timer.start()
    try:
        mq.send(b"room", 3, timeout=30)
    finally:
        timer.join()
    assert mq.receive(timeout=0) == (b"room", 3)


@pytest.mark.parametrize("nonblocking", [False, True])
@pytest.mark.parametrize("timeout", [0, 0.0, 0.05, 1e-9])
def test_timeout_raises_timeout_error(
    make_queue: MakeQueue, nonblocking: bool, timeout: float
) -> None:
    mq = make_queue(capacity=1, nonblocking=nonblocking)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        mq.receive(timeout=timeout)
    with pytest.raises(TimeoutError):
        mq.receive_into(bytearray(128), timeout=timeout)
    with pytest.raises(TimeoutError):
        mq.receive_many(4, timeout=timeout)
    assert time.monotonic() - started >= 3 * timeout
    mq.send(b"fill")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        mq.send(b"over", timeout=timeout)
    assert time.monotonic() - started >= timeout
    assert mq.nonblocking is nonblocking


def test_timeout_none_on_a_nonblocking_queue_is_blocking_io_error(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=1, nonblocking=True)
    with pytest.raises(BlockingIOError) as receiving:
        mq.receive()
    assert not isinstance(receiving.value, TimeoutError)
    with pytest.raises(BlockingIOError):
        mq.receive_into(bytearray(128))
    with pytest.raises(BlockingIOError) as many:
        mq.receive_many(4)
    assert not isinstance(many.value, TimeoutError)
    mq.send(b"fill")
    with pytest.raises(BlockingIOError):
        mq.send(b"over")


def test_nowait_is_blocking_io_error_whatever_the_mode(make_queue: MakeQueue) -> None:
    for nonblocking in (False, True):
        mq = make_queue(capacity=1, nonblocking=nonblocking)
        with pytest.raises(BlockingIOError) as receiving:
            mq.receive_nowait()
        assert not isinstance(receiving.value, TimeoutError)
        mq.send_nowait(b"fill")
        with pytest.raises(BlockingIOError):
            mq.send_nowait(b"over")


def test_a_timeout_waits_on_a_nonblocking_queue(make_queue: MakeQueue) -> None:
    mq = make_queue(nonblocking=True)
    timer = threading.Timer(0.2, mq.send, (b"waited",))
    timer.start()
    try:
        assert mq.receive(timeout=30) == (b"waited", 0)
    finally:
        timer.join()
    assert mq.nonblocking is True


def test_infinite_timeout_waits(mq: MessageQueue) -> None:
    timer = threading.Timer(0.2, mq.send, (b"inf",))
    timer.start()
    try:
        assert mq.receive(timeout=math.inf) == (b"inf", 0)
    finally:
        timer.join()


def test_huge_timeout_is_not_an_error(mq: MessageQueue) -> None:
    mq.send(b"there")
    assert mq.receive(timeout=1e300) == (b"there", 0)
    mq.send(b"x", timeout=2**70)
    assert mq.receive(timeout=10**12) == (b"x", 0)


class np_float(float):
    pass


def test_timeout_past_float_range_waits_forever(mq: MessageQueue) -> None:
    mq.send(b"there")
    assert mq.receive(timeout=10**400) == (b"there", 0)
    mq.send(b"again", timeout=10**400)
    assert mq.receive_into(bytearray(128), timeout=10**400) == (5, 0)


@pytest.mark.parametrize("timeout", [fractions.Fraction(1, 50), np_float(0.02)])
def test_any_real_number_is_a_timeout(mq: MessageQueue, timeout: Any) -> None:
    with pytest.raises(TimeoutError):
        mq.receive(timeout=timeout)
    mq.send(b"x", timeout=timeout)
    assert mq.receive(timeout=timeout) == (b"x", 0)


BAD_TIMEOUTS: list[tuple[Any, type[Exception]]] = [
    (-(10**400), ValueError),
    (fractions.Fraction(-1, 2), ValueError),
    (-1, ValueError),
    (-0.001, ValueError),
    (-math.inf, ValueError),
    (math.nan, ValueError),
    ("1", TypeError),
    (1j, TypeError),
    (True, TypeError),
    ([1], TypeError),
]


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
def test_bad_timeouts_take_and_send_nothing(
    mq: MessageQueue, timeout: Any, error: type[Exception]
) -> None:
    mq.send(b"stays")
    with pytest.raises(error, match="timeout"):
        mq.receive(timeout=timeout)
    with pytest.raises(error, match="timeout"):
        mq.receive_into(bytearray(128), timeout=timeout)
    with pytest.raises(error, match="timeout"):
        mq.receive_many(4, timeout=timeout)
    with pytest.raises(error, match="timeout"):
        mq.send(b"not sent", timeout=timeout)
    assert mq.attributes().current_messages == 1


# -- timeout=0 and the shared O_NONBLOCK flag ---------------------------------------


@pytest.mark.parametrize("nonblocking", [False, True])
def test_timeout_zero_leaves_o_nonblocking_alone(make_queue: MakeQueue, nonblocking: bool) -> None:
    mq = make_queue(capacity=2, nonblocking=nonblocking)
    other = mq.dup()  # the same open description: it sees the same flag
    stop = threading.Event()
    tries = [0]

    def hammer() -> None:
        buffer = bytearray(128)
        while not stop.is_set():
            for call in (
                lambda: mq.receive(timeout=0),
                lambda: mq.receive_into(buffer, timeout=0),
                lambda: mq.receive_nowait(),
                lambda: mq.send(b"x", timeout=0),
                lambda: mq.send_nowait(b"x"),
                lambda: list(mq.drain()),
            ):
                try:
                    call()
                except (TimeoutError, BlockingIOError):
                    pass
                tries[0] += 1

    thread = threading.Thread(target=hammer)
    thread.start()
    seen = set()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline or tries[0] < 200:
            seen.add(other.attributes().nonblocking)
            seen.add(mq.nonblocking)
    finally:
        stop.set()
        thread.join()
        other.close()
    assert seen == {nonblocking}
    assert tries[0] >= 200


# -- the monotonic clock --------------------------------------------------------------

_SHIFT_REALTIME_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

/* Moves the wall clock by SHIFT_REALTIME seconds, as a clock jump would, for
   each way a program can read it (posix_ipc's timeouts, for one, use
   gettimeofday); CLOCK_MONOTONIC is left alone. */
static long shift_seconds(void)
{
    const char *shift = getenv("SHIFT_REALTIME");
    return shift ? atol(shift) : 0;
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(clock, ts);
    if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        ts->tv_sec += shift_seconds();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    static int (*real)(struct timeval *, void *);
    if (!real)
        real = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
    int rc = real(tv, tz);
    if (rc == 0)
        tv->tv_sec += shift_seconds();
    return rc;
}

time_t time(time_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
"""


@pytest.fixture(scope="module")
def shift_realtime_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the clock-shifting LD_PRELOAD library")
    folder = tmp_path_factory.mktemp("shift")
    source = folder / "shift.c"
    source.write_text(_SHIFT_REALTIME_C)
    library = folder / "shift.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
        capture_output=True,
    )
    return library


@pytest.mark.parametrize("shift", [3600, -3600])
def test_timeouts_ignore_wall_clock_jumps(shift_realtime_library: Path, shift: int) -> None:
    name = unique_name("clock")
    script = textwrap.dedent(
        f"""
        import time, anyposixmq
        print(time.time())
        with anyposixmq.MessageQueue({name!r}, create=True, capacity=1,
                                     max_message_size=8) as q:
            try:
                started = time.monotonic()
                try:
                    q.receive(timeout=0.3)
                except TimeoutError:
                    print(time.monotonic() - started)
                q.send(b"full")
                started = time.monotonic()
                try:
                    q.send(b"over", timeout=0.3)
                except TimeoutError:
                    print(time.monotonic() - started)
            finally:
                q.unlink()
        """
    )
    env = {
        **os.environ,
        "LD_PRELOAD": str(shift_realtime_library),
        "SHIFT_REALTIME": str(shift),
    }
    before = time.time()
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            cwd=CHILD_CWD,
        )
    finally:
        anyposixmq.unlink(name, missing_ok=True)
    assert result.returncode == 0, result.stderr
    wall, receive_took, send_took = (float(line) for line in result.stdout.split())
    # The child's wall clock really was moved, so a deadline on it would be off by an hour.
    assert abs(wall - before - shift) < 60
    assert 0.25 <= receive_took < 5
    assert 0.25 <= send_took < 5


# -- EINTR: a storm of signals with a Python handler ------------------------------------


@pytest.fixture
def alarm_storm() -> Iterator[list[int]]:
    """SIGALRM every 10 ms, handled by a Python no-op that counts."""
    count = [0]

    def handler(signum: int, frame: object) -> None:
        count[0] += 1

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
    try:
        yield count
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)


def test_eintr_keeps_the_receive_timeout(mq: MessageQueue, alarm_storm: list[int]) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        mq.receive(timeout=0.5)
    took = time.monotonic() - started
    assert alarm_storm[0] >= 10
    assert 0.5 <= took < 5


def test_eintr_keeps_the_send_timeout(make_queue: MakeQueue, alarm_storm: list[int]) -> None:
    mq = make_queue(capacity=1)
    mq.send(b"full")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        mq.send(b"over", timeout=0.5)
    took = time.monotonic() - started
    assert alarm_storm[0] >= 10
    assert 0.5 <= took < 5


@pytest.mark.parametrize(
    "receive",
    [
        lambda q: q.receive(),
        lambda q: q.receive(timeout=30),
        lambda q: next(iter(q)),
        lambda q: q.receive_into(bytearray(q.max_message_size)),
        lambda q: q.receive_many(4, timeout=30)[0],
        lambda q: q.receive_many(4)[0],
    ],
)
def test_eintr_does_not_break_a_waiting_receive(
    mq: MessageQueue, alarm_storm: list[int], receive: Callable[[MessageQueue], Any]
) -> None:
    timer = threading.Timer(0.4, mq.send, (b"after the storm", 5))
    timer.start()
    try:
        result = receive(mq)
    finally:
        timer.join()
    assert result in [(b"after the storm", 5), (15, 5)]
    assert alarm_storm[0] >= 5


def test_eintr_does_not_break_a_waiting_send(make_queue: MakeQueue, alarm_storm: list[int]) -> None:
    mq = make_queue(capacity=1)
    mq.send(b"full")
    timer = threading.Timer(0.4, mq.receive)
    timer.start()
    try:
        mq.send(b"in", 1)
    finally:
        timer.join()
    assert mq.receive(timeout=0) == (b"in", 1)
    assert alarm_storm[0] >= 5


def test_handler_exception_propagates(mq: MessageQueue) -> None:
    class Stop(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise Stop

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        with pytest.raises(Stop):
            mq.receive(timeout=30)
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Stop):
            mq.receive()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
    mq.send(b"still works")
    assert mq.receive(timeout=1) == (b"still works", 0)


# -- SIGINT (Ctrl-C) stops a blocking call in another process ----------------------------

_SIGINT_SCRIPT = """
import sys, time, anyposixmq
name, call = sys.argv[1], sys.argv[2]
q = anyposixmq.MessageQueue(name, create=True, capacity=1, max_message_size=8)
if call.startswith("send"):
    q.send(b"full")
calls = {
    "receive": lambda: q.receive(),
    "receive timeout": lambda: q.receive(timeout=60),
    "receive_into": lambda: q.receive_into(bytearray(8)),
    "iterate": lambda: next(iter(q)),
    "send": lambda: q.send(b"over"),
    "send timeout": lambda: q.send(b"over", timeout=60),
}
try:
    print("ready", flush=True)
    calls[call]()
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    sys.exit(0)
finally:
    q.close()
    q.unlink()
print("returned")
sys.exit(3)
"""


@pytest.mark.parametrize(
    "call", ["receive", "receive timeout", "receive_into", "iterate", "send", "send timeout"]
)
def test_sigint_stops_a_blocking_call(call: str) -> None:
    name = unique_name("sigint")
    child = subprocess.Popen(
        [sys.executable, "-c", _SIGINT_SCRIPT, name, call],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=CHILD_CWD,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it block in the kernel
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        anyposixmq.unlink(name, missing_ok=True)
    assert child.returncode == 0, (out, err)
    word, when = out.split()
    assert word == "interrupted"
    assert float(when) - sent < 5  # promptly, not at the end of a timeout


# -- the GIL is released while waiting ----------------------------------------------------


def test_the_gil_is_released_while_blocked() -> None:
    name = unique_name("gil")
    script = textwrap.dedent(
        f"""
        import threading, time, anyposixmq
        q = anyposixmq.MessageQueue({name!r}, create=True, capacity=1, max_message_size=8)
        try:
            got = []
            for call in (lambda: q.receive(), lambda: q.receive(timeout=60),
                         lambda: q.receive_into(bytearray(8))):
                t = threading.Thread(target=lambda: got.append(call()))
                t.start()
                time.sleep(0.2)
                # A thread blocked in the kernel with the GIL held would stop this one here.
                n = sum(range(100000))
                q.send(b"go", 1)
                t.join()
            print(len(got))
        finally:
            q.close()
            q.unlink()
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            cwd=CHILD_CWD,
        )
    finally:
        anyposixmq.unlink(name, missing_ok=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"

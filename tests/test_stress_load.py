"""Multi-process load and faults: several producer and consumer processes on
one small queue, tens of thousands of numbered messages at mixed priorities.

Every message must be delivered exactly once, intact, and FIFO within each
priority from each producer (as each consumer saw them).  Producers and
consumers are this file run as a script (``python test_stress_load.py
producer|consumer ...``), sync or async (both strategies, every backend).

Producers log each sequence number once ``send`` has returned, consumers
each message once received, both with an unbuffered write, so a process
killed with SIGKILL leaves an exact account up to its last message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import anyposixmq

CAPACITY = 4
SIZE = 128
STOP = b"STOP"
PRIORITIES = (0, 1, 2, 7, anyposixmq.PRIORITY_MAX)
CONSUMER_KINDS = (
    "sync",
    "sync-blocking",
    "asyncio-poll",
    "asyncio-thread",
    "trio-poll",
    "trio-thread",
    "uvloop-poll",
    "asyncio-poll-many",
    "trio-thread-many",
    "uvloop-thread-many",
)
PRODUCER_KINDS = ("sync", "asyncio-poll", "trio-thread", "uvloop-poll")


# -- the messages ---------------------------------------------------------------


def priority_of(producer: int, seq: int) -> int:
    return PRIORITIES[(seq * 7 + producer * 3 + seq // 5) % len(PRIORITIES)]


def encode(producer: int, seq: int) -> tuple[bytes, int]:
    prio = priority_of(producer, seq)
    head = b"%d %d %d " % (producer, seq, prio)
    filler = bytes([seq & 0xFF]) * ((seq * 13) % (SIZE - len(head) + 1))
    return head + filler, prio


def decode(data: bytes, priority: int) -> bytes:
    """Check one message; return its record line ``producer seq priority``."""
    producer, seq, prio, _ = data.split(b" ", 3)
    expected, expected_prio = encode(int(producer), int(seq))
    if data != expected or priority != expected_prio or int(prio) != priority:
        raise AssertionError(f"corrupt message {data[:40]!r} at priority {priority}")
    return b"%s %s %s\n" % (producer, seq, prio)


# -- the worker processes ---------------------------------------------------------


def _backend(kind: str) -> tuple[str, dict[str, Any], str]:
    loop, strategy = kind.split("-")[:2]
    if loop == "uvloop":
        return "asyncio", {"use_uvloop": True}, strategy
    return loop, {}, strategy


def run_producer(name: str, kind: str, producer: int, count: int, log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    if kind == "sync":
        with anyposixmq.MessageQueue(name, read=False) as mq:
            for seq in range(count):
                data, prio = encode(producer, seq)
                mq.send(data, prio, timeout=120)
                os.write(fd, b"%d\n" % seq)
        return

    import anyio

    backend, options, strategy = _backend(kind)

    async def main() -> None:
        async with anyposixmq.AsyncMessageQueue(name, read=False, strategy=strategy) as amq:  # type: ignore[arg-type]
            with anyio.fail_after(120):
                for seq in range(count):
                    data, prio = encode(producer, seq)
                    await amq.send(data, prio)
                    os.write(fd, b"%d\n" % seq)

    anyio.run(main, backend=backend, backend_options=options)


def run_consumer(name: str, kind: str, out: str) -> None:
    """Receive until STOP; pass STOP on for the next consumer."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    if kind.startswith("sync"):
        # "sync-blocking" waits in mq_receive itself: the kernel hands it a
        # message before it tells anyone polling (timed and async receives).
        timeout = None if kind == "sync-blocking" else 120
        with anyposixmq.MessageQueue(name) as mq:
            while True:
                msg = mq.receive(timeout=timeout)
                if msg.data == STOP:
                    mq.send(STOP, timeout=120)
                    return
                os.write(fd, decode(msg.data, msg.priority))

    import anyio

    backend, options, strategy = _backend(kind)
    many = kind.endswith("-many")

    async def main() -> None:
        async with anyposixmq.AsyncMessageQueue(name, strategy=strategy) as amq:  # type: ignore[arg-type]
            while True:
                with anyio.fail_after(120):
                    batch = await amq.receive_many(16) if many else [await amq.receive()]
                lines: list[bytes] = []
                for msg in batch:
                    if msg.data == STOP:
                        os.write(fd, b"".join(lines))
                        with anyio.fail_after(120):
                            await amq.send(STOP)
                        return
                    lines.append(decode(msg.data, msg.priority))
                os.write(fd, b"".join(lines))

    anyio.run(main, backend=backend, backend_options=options)


# -- the test side ------------------------------------------------------------------


class Run:
    """Producer and consumer processes on one queue, and their accounts."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.tmp = tmp
        self.producers: dict[int, tuple[subprocess.Popen[bytes], Path, int]] = {}
        self.consumers: list[tuple[subprocess.Popen[bytes], Path, str]] = []

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, __file__, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def producer(self, kind: str, count: int) -> int:
        pid = len(self.producers)
        log = self.tmp / f"producer-{pid}.log"
        proc = self._spawn("producer", self.name, kind, str(pid), str(count), str(log))
        self.producers[pid] = (proc, log, count)
        return pid

    def consumer(self, kind: str) -> int:
        index = len(self.consumers)
        out = self.tmp / f"consumer-{index}.log"
        self.consumers.append((self._spawn("consumer", self.name, kind, str(out)), out, kind))
        return index

    def sent(self, pid: int) -> int:
        log = self.producers[pid][1]
        return log.read_bytes().count(b"\n") if log.exists() else 0

    def received(self, index: int) -> int:
        out = self.consumers[index][1]
        return out.read_bytes().count(b"\n") if out.exists() else 0

    def wait_until(self, what: str, predicate: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for proc, *_ in [*self.producers.values(), *self.consumers]:
                if proc.poll() not in (None, 0):
                    stderr = proc.stderr.read().decode() if proc.stderr else ""
                    raise AssertionError(f"a worker failed ({proc.returncode}): {stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting until {what}")
            time.sleep(0.01)

    @staticmethod
    def _check_exit(proc: subprocess.Popen[bytes], timeout: float, expect: int = 0) -> None:
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        assert code == expect, f"worker exited {code}: {stderr}"

    def finish(self, killed_producers: set[int], killed_consumers: set[int]) -> None:
        """Wait for producers, send STOP, wait for consumers, check the queue is left empty."""
        for pid, (proc, _, _) in self.producers.items():
            self._check_exit(proc, 300, -signal.SIGKILL if pid in killed_producers else 0)
        with anyposixmq.MessageQueue(self.name) as mq:
            mq.send(STOP, timeout=60)
            for index, (proc, _, _) in enumerate(self.consumers):
                self._check_exit(proc, 300, -signal.SIGKILL if index in killed_consumers else 0)
            assert list(mq.drain()) == [(STOP, 0)]

    def kill_all(self) -> None:
        for proc, *_ in [*self.producers.values(), *self.consumers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()

    def check(self, killed_producers: set[int], killed_consumers: set[int]) -> int:
        """Check the accounts; return how many messages were delivered."""
        delivered: Counter[tuple[int, int]] = Counter()
        for index, (_, out, kind) in enumerate(self.consumers):
            last: dict[tuple[int, int], int] = {}
            for line in out.read_bytes().splitlines():
                producer, seq, prio = map(int, line.split())
                key = (producer, prio)
                assert last.get(key, -1) < seq, (
                    f"consumer {index} ({kind}) got producer {producer}'s message {seq} "
                    f"after {last[key]} at priority {prio}: not FIFO"
                )
                last[key] = seq
                delivered[producer, seq] += 1
        dups = [key for key, n in delivered.items() if n > 1]
        assert not dups, f"delivered more than once: {dups[:10]}"
        lost: list[tuple[int, int]] = []
        for pid, (_, _, count) in self.producers.items():
            got = sorted(seq for producer, seq in delivered if producer == pid)
            if pid in killed_producers:
                acked = self.sent(pid)
                # Everything acknowledged arrived; at most the one in flight more.
                assert got == list(range(len(got))), f"producer {pid}: gaps in {got[-5:]}"
                assert acked <= len(got) <= acked + 1, (pid, acked, len(got))
                assert acked < count
            else:
                assert self.sent(pid) == count
                lost += [(pid, seq) for seq in sorted(set(range(count)) - set(got))]
        # A consumer killed between taking a message and writing it down loses it
        # with itself: at most one per killed consumer, never anybody else's.
        assert len(lost) <= len(killed_consumers), f"lost: {lost[:10]}"
        return sum(delivered.values())


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    from _helpers import unique_name

    name = unique_name("load")
    mq = anyposixmq.MessageQueue(
        name, create=True, exclusive=True, capacity=CAPACITY, max_message_size=SIZE
    )
    mq.close()
    r = Run(name, tmp_path)
    try:
        yield r
    finally:
        r.kill_all()
        anyposixmq.unlink(name, missing_ok=True)


pytestmark = [pytest.mark.stress, pytest.mark.timeout(600)]


def test_sync_producers_and_consumers(run: Run) -> None:
    for _ in range(4):
        run.producer("sync", 15000)
    for _ in range(3):
        run.consumer("sync")
    run.finish(set(), set())
    assert run.check(set(), set()) == 60000


def test_mixed_sync_and_async(run: Run) -> None:
    for kind in PRODUCER_KINDS:
        run.producer(kind, 10000)
    for kind in CONSUMER_KINDS:
        run.consumer(kind)
    run.finish(set(), set())
    assert run.check(set(), set()) == 10000 * len(PRODUCER_KINDS)


@pytest.mark.parametrize("victim_kind", ["sync", "asyncio-poll", "trio-thread"])
def test_producer_killed_mid_stream(run: Run, victim_kind: str) -> None:
    victim = run.producer(victim_kind, 20000)
    run.producer("sync", 4000)
    run.producer("uvloop-poll", 4000)
    run.consumer("sync")
    run.consumer("trio-poll")
    run.consumer("asyncio-thread-many")
    run.wait_until("the victim has sent 1000", lambda: run.sent(victim) >= 1000)
    run.producers[victim][0].send_signal(signal.SIGKILL)
    run.finish({victim}, set())
    delivered = run.check({victim}, set())
    assert delivered >= 8000 + 1000


@pytest.mark.parametrize("victim_kind", ["sync", "asyncio-poll", "trio-thread"])
def test_consumer_killed_mid_stream(run: Run, victim_kind: str) -> None:
    for kind in ("sync", "asyncio-thread", "trio-poll"):
        run.producer(kind, 8000)
    # The victim starts alone, so it is certain to get its share before it is
    # killed (faster consumers could otherwise take everything first).
    victim = run.consumer(victim_kind)
    run.wait_until("the victim has received 500", lambda: run.received(victim) >= 500)
    run.consumer("sync")
    run.consumer("uvloop-poll")
    run.consumers[victim][0].send_signal(signal.SIGKILL)
    assert sum(run.sent(pid) for pid in run.producers) < 24000, "not mid-stream"
    run.finish(set(), {victim})
    delivered = run.check(set(), {victim})
    assert delivered >= 24000 - 1


def test_accounts_catch_a_lost_message(run: Run) -> None:
    # The checks above can fail: drop one message on purpose and see it caught.
    run.producer("sync", 200)
    run.consumer("sync")
    run.finish(set(), set())
    out = run.consumers[0][1]
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:50] + lines[51:]))
    with pytest.raises(AssertionError, match="lost"):
        run.check(set(), set())
    out.write_bytes(b"".join(lines[:50] + lines[49:]))
    with pytest.raises(AssertionError, match=r"FIFO|more than once"):
        run.check(set(), set())


def main(argv: list[str]) -> None:
    role, name, kind, *rest = argv
    if role == "producer":
        producer, count, log = rest
        run_producer(name, kind, int(producer), int(count), log)
    else:
        (out,) = rest
        run_consumer(name, kind, out)


if __name__ == "__main__":
    main(sys.argv[1:])

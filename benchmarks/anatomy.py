"""Where the time of one receive (and one send, and one B1 pair) goes, step by step.

Each step adds one piece of what ``MessageQueue.receive()`` hands back to the
bare ``mq_receive`` call of the cffi floor (``floors.py``), on a queue refilled
with 10 messages before each timed batch of 10 receives; posix_ipc's receive
is measured the same way.  Then the B1 pair (a send and a receive on a queue
that never waits), from the floor's to ours, through what any API with a
method per operation that returns a ``Message`` must add: the ``Message``
itself and the two method calls.  Times are medians over rounds of the
thread's CPU time per operation (the loop never waits).  Run ``python
benchmarks/anatomy.py`` with the package and posix_ipc installed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import floors
import posix_ipc

from anyposixmq import Message, MessageQueue, unlink

SIZE = 64
BATCHES = 20_000
ROUNDS = 5


def _timed(steps: list[tuple[str, Callable[[], None], Callable[[], None]]]) -> None:
    """Print each step's median cost per operation; *prepare* runs untimed before each batch."""
    results: dict[str, list[float]] = {label: [] for label, _, _ in steps}
    for _ in range(ROUNDS):
        for label, step, prepare in steps:
            total = 0
            for _ in range(BATCHES):
                prepare()
                start = time.thread_time_ns()
                step()
                total += time.thread_time_ns() - start
            results[label].append(total / (BATCHES * 10))
    for label, values in results.items():
        print(f"{label:44} {statistics.median(values):7.0f} ns")


def main() -> None:
    built, note = floors.build()
    if not built:
        raise SystemExit(note)
    ffi, lib = floors.binding()
    name = "/anyposixmq-anatomy"
    unlink(name, missing_ok=True)
    q = MessageQueue(name, create=True, exclusive=True, capacity=10, max_message_size=SIZE)
    q.unlink()
    pq = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_messages=10, max_message_size=SIZE)
    pq.unlink()
    fq = q.fileno()  # a descriptor is an mqd_t on Linux: the floor calls it directly
    data = b"x" * SIZE
    buf, cell = floors._buffers(SIZE)
    call, send_call, unpack = lib.mq_receive, lib.mq_send, ffi.unpack
    new_message = tuple.__new__  # the library's way to a Message, without its __new__
    receive, pi_receive = q.receive, pq.receive

    def fill() -> None:
        for _ in range(10):
            q.send(data)

    def pi_fill() -> None:
        for _ in range(10):
            pq.send(data)

    def c_call() -> None:
        for _ in range(10):
            call(fq, buf, SIZE, cell)

    def plus_bytes() -> None:
        for _ in range(10):
            unpack(buf, call(fq, buf, SIZE, cell))

    def plus_priority() -> None:
        for _ in range(10):
            (unpack(buf, call(fq, buf, SIZE, cell)), cell[0])

    def plus_message() -> None:
        for _ in range(10):
            new_message(Message, (unpack(buf, call(fq, buf, SIZE, cell)), cell[0]))

    def whole_receive() -> None:
        for _ in range(10):
            receive()

    def posix_ipc_receive() -> None:
        for _ in range(10):
            pi_receive()

    _timed(
        [
            ("floor: mq_receive(q, buf, size, &prio)", c_call, fill),
            ("+ the bytes (ffi.unpack)", plus_bytes, fill),
            ("+ the priority from the cell", plus_priority, fill),
            ("+ a Message (tuple.__new__, as the library)", plus_message, fill),
            ("MessageQueue.receive()", whole_receive, fill),
            ("posix_ipc receive()", posix_ipc_receive, pi_fill),
        ]
    )

    def drain() -> None:
        for _ in q.drain():
            pass

    def pi_drain() -> None:
        while pq.current_messages:
            pi_receive()

    def raw_send() -> None:
        for _ in range(10):
            send_call(fq, data, SIZE, 0)

    def method_send() -> None:
        for _ in range(10):
            q.send(data)

    def posix_ipc_send() -> None:
        for _ in range(10):
            pq.send(data)

    print()
    _timed(
        [
            ("floor: mq_send(q, data, size, 0)", raw_send, drain),
            ("MessageQueue.send(data)", method_send, drain),
            ("posix_ipc send(data)", posix_ipc_send, pi_drain),
        ]
    )

    class Least:
        """The least a method per operation can do: the floor's calls and a Message."""

        def send(self, data: bytes) -> None:
            send_call(fq, data, len(data), 0)

        def receive(self) -> Message:
            return new_message(Message, (unpack(buf, call(fq, buf, SIZE, cell)), cell[0]))

    least = Least()
    pair_data = b"x" * 16
    send = q.send

    def floor_pairs() -> None:
        for _ in range(10):
            send_call(fq, pair_data, 16, 0)
            (unpack(buf, call(fq, buf, SIZE, cell)), cell[0])

    def plus_message_pairs() -> None:
        for _ in range(10):
            send_call(fq, pair_data, 16, 0)
            new_message(Message, (unpack(buf, call(fq, buf, SIZE, cell)), cell[0]))

    def least_method_pairs() -> None:
        for _ in range(10):
            least.send(pair_data)
            least.receive()

    def our_pairs() -> None:
        for _ in range(10):
            send(pair_data)
            receive()

    def posix_ipc_pairs() -> None:
        for _ in range(10):
            pq.send(pair_data)
            pi_receive()

    print()
    _timed(
        [
            ("B1 pair: the cffi floor's", floor_pairs, drain),
            ("+ a Message", plus_message_pairs, drain),
            ("+ a method each (the least an API does)", least_method_pairs, drain),
            ("MessageQueue.send() + receive()", our_pairs, drain),
            ("posix_ipc send() + receive()", posix_ipc_pairs, pi_drain),
        ]
    )
    q.close()
    pq.close()


if __name__ == "__main__":
    main()

"""Where the time of one receive (and one send) goes, step by step.

Each step adds one piece of what ``MessageQueue.receive()`` does to a bare
one-argument C call, on a queue refilled with 10 messages before each timed
batch of 10 receives; posix_ipc's receive is measured the same way.  Times are
medians of the thread's CPU time per operation (the loop never waits).  Run
``python benchmarks/anatomy.py``; it needs posix_ipc.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import posix_ipc
from anyposixmq._binding import ffi, lib

from anyposixmq import Message, MessageQueue, unlink

SIZE = 64
BATCHES = 20_000
ROUNDS = 5


def main() -> None:
    name = "/anyposixmq-anatomy"
    unlink(name, missing_ok=True)
    q = MessageQueue(name, create=True, exclusive=True, capacity=10, max_message_size=SIZE)
    q.unlink()
    pq = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_messages=10, max_message_size=SIZE)
    pq.unlink()
    data = b"x" * SIZE
    buf, cell, block, view = q._buffers()
    call = lib.apmq_receive_plain
    unpack, new = ffi.unpack, tuple.__new__
    receive, pi_receive = q.receive, pq.receive

    def c_call() -> None:
        for _ in range(10):
            call(block)

    def plus_unpack() -> None:
        for _ in range(10):
            unpack(buf, call(block))

    def plus_view_slice() -> None:
        for _ in range(10):
            view[: call(block)]

    def plus_priority() -> None:
        for _ in range(10):
            (view[: call(block)], cell[0])

    def plus_message() -> None:
        for _ in range(10):
            new(Message, (view[: call(block)], cell[0]))

    def whole_receive() -> None:
        for _ in range(10):
            receive()

    def posix_ipc_receive() -> None:
        for _ in range(10):
            pi_receive()

    steps: list[tuple[str, Callable[[], None], Callable[[bytes], None]]] = [
        ("C call apmq_receive_plain(block)", c_call, q.send),
        ("+ bytes by ffi.unpack", plus_unpack, q.send),
        ("+ bytes by slicing a buffer view", plus_view_slice, q.send),
        ("+ priority from the cell", plus_priority, q.send),
        ("+ Message named tuple", plus_message, q.send),
        ("MessageQueue.receive()", whole_receive, q.send),
        ("posix_ipc receive()", posix_ipc_receive, pq.send),
    ]
    results: dict[str, list[float]] = {label: [] for label, _, _ in steps}
    for _ in range(ROUNDS):
        for label, step, send in steps:
            total = 0
            for _ in range(BATCHES):
                for _ in range(10):
                    send(data)
                start = time.thread_time_ns()
                step()
                total += time.thread_time_ns() - start
            results[label].append(total / (BATCHES * 10))
    for label, values in results.items():
        print(f"{label:36} {statistics.median(values):7.0f} ns")

    send_plain = lib.apmq_send_plain
    cq = q._q
    send, pi_send = q.send, pq.send

    def raw_send() -> None:
        for _ in range(10):
            send_plain(cq, data, SIZE, 0)

    def method_send() -> None:
        for _ in range(10):
            send(data)

    def posix_ipc_send() -> None:
        for _ in range(10):
            pi_send(data)

    send_steps: list[tuple[str, Callable[[], None], Callable[[], object]]] = [
        ("C call apmq_send_plain(q, data, n, 0)", raw_send, receive),
        ("MessageQueue.send(data)", method_send, receive),
        ("posix_ipc send(data)", posix_ipc_send, pi_receive),
    ]
    print()
    for label, step, drain in send_steps:
        values = []
        for _ in range(ROUNDS):
            total = 0
            for _ in range(BATCHES):
                start = time.thread_time_ns()
                step()
                total += time.thread_time_ns() - start
                for _ in range(10):
                    drain()
            values.append(total / (BATCHES * 10))
        print(f"{label:36} {statistics.median(values):7.0f} ns")
    q.close()
    pq.close()


if __name__ == "__main__":
    main()

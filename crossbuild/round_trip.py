"""A send/receive round trip and a timed receive through an installed wheel.

``crossbuild/wheels.py`` runs it with each interpreter a wheel is installed
into (natively, or under qemu-aarch64), from outside the checkout: it checks
that the binding comes from that installation, and prints the Python
version and the machine it ran on, as the interpreter itself reports them.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import anyposixmq
from anyposixmq import _binding as binding

WAIT = 0.2

assert binding.__file__ is not None
assert binding.__file__.endswith(".abi3.so"), binding.__file__
assert binding.__file__.startswith(sys.prefix), binding.__file__
name = f"/anyposixmq-wheel-{os.getpid()}"
with anyposixmq.MessageQueue(name, create=True, capacity=2, max_message_size=16) as queue:
    queue.unlink()
    queue.send(b"ping", priority=3)
    assert queue.receive(timeout=1.0) == (b"ping", 3)
    start = time.monotonic()
    try:
        queue.receive(timeout=WAIT)
    except TimeoutError:
        waited = time.monotonic() - start
    else:
        raise AssertionError("a receive from an empty queue returned a message")
    assert waited >= WAIT, waited
print(
    f"Python {platform.python_version()} on {platform.machine()}: round trip, and a timed"
    f" receive that gave up after {waited:.2f} s, through {binding.__file__}"
)

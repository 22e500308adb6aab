"""A pytest plugin for the test suite under qemu-user (``-p qemu_plugin``).

qemu-user does not implement ``mq_notify``: the system call fails with
ENOSYS there.  When a probe at the start of the run finds that, the tests of
``request_notification`` (``tests/test_notify.py``) are skipped, saying so,
instead of failing.  Where ``mq_notify`` works, the plugin changes nothing.
"""

from __future__ import annotations

import errno
import os
import signal

import pytest

import anyposixmq

REASON = "qemu-user does not implement mq_notify (ENOSYS)"


def mq_notify_works() -> bool:
    """Whether a queue here can register for a notification."""
    name = f"/anyposixmq-qemu-probe-{os.getpid()}"
    with anyposixmq.MessageQueue(name, create=True, capacity=1, max_message_size=8) as queue:
        queue.unlink()
        try:
            queue.request_notification(signal.SIGUSR1)
        except OSError as error:
            if error.errno == errno.ENOSYS:
                return False
            raise
        queue.request_notification(None)
    return True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if mq_notify_works():
        return
    for item in items:
        if item.path.name == "test_notify.py":
            item.add_marker(pytest.mark.skip(reason=REASON))

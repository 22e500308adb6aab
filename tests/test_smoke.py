from __future__ import annotations

import anyposixmq


def test_send_receive(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"hello", 3)
    assert mq.receive() == anyposixmq.Message(b"hello", 3)

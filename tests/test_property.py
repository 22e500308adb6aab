"""A model-based test: random sends and receives against a model priority queue."""

from __future__ import annotations

import itertools

import pytest
from _helpers import unique_name
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import anyposixmq
from anyposixmq import Message, MessageQueue

CAPACITY = 4
SIZE = 16

payloads = st.binary(max_size=SIZE)
# Few distinct priorities, so FIFO within a priority is exercised; and the extremes.
priorities = st.sampled_from([0, 1, 2, 7, anyposixmq.PRIORITY_MAX])


class QueueModel(RuleBasedStateMachine):
    """The kernel queue against a list kept in receive order."""

    def __init__(self) -> None:
        super().__init__()
        self.name = unique_name("prop")
        self.mq = MessageQueue(
            self.name, create=True, exclusive=True, capacity=CAPACITY, max_message_size=SIZE
        )
        self.other = MessageQueue(self.name)  # a second description on the same queue
        # (priority, sequence, data): received highest priority first, oldest first.
        self.model: list[tuple[int, int, bytes]] = []
        self.sequence = itertools.count()

    def teardown(self) -> None:
        self.mq.close()
        self.other.close()
        anyposixmq.unlink(self.name, missing_ok=True)

    def _put(self, data: bytes, priority: int) -> None:
        self.model.append((priority, next(self.sequence), data))

    def _take(self) -> Message:
        best = min(self.model, key=lambda item: (-item[0], item[1]))
        self.model.remove(best)
        return Message(best[2], best[0])

    @property
    def full(self) -> bool:
        return len(self.model) == CAPACITY

    # -- sends ----------------------------------------------------------------

    @precondition(lambda self: not self.full)
    @rule(data=payloads, priority=priorities)
    def send(self, data: bytes, priority: int) -> None:
        self.mq.send(data, priority)
        self._put(data, priority)

    @rule(data=payloads, priority=priorities, through_other=st.booleans())
    def send_nowait(self, data: bytes, priority: int, through_other: bool) -> None:
        queue = self.other if through_other else self.mq
        if self.full:
            with pytest.raises(BlockingIOError):
                queue.send_nowait(data, priority)
        else:
            queue.send_nowait(bytearray(data), priority)
            self._put(data, priority)

    @rule(data=payloads, priority=priorities)
    def send_timeout_zero(self, data: bytes, priority: int) -> None:
        if self.full:
            with pytest.raises(TimeoutError):
                self.mq.send(Message(data, priority), timeout=0)
        else:
            self.mq.send(Message(data, priority), timeout=0)
            self._put(data, priority)

    @rule(data=st.binary(min_size=SIZE + 1, max_size=SIZE + 8))
    def send_too_long(self, data: bytes) -> None:
        with pytest.raises(OSError, match="max_message_size"):
            self.mq.send_nowait(data)

    # -- receives ---------------------------------------------------------------

    @precondition(lambda self: self.model)
    @rule()
    def receive(self) -> None:
        assert self.mq.receive() == self._take()

    @rule(through_other=st.booleans())
    def receive_nowait(self, through_other: bool) -> None:
        queue = self.other if through_other else self.mq
        if not self.model:
            with pytest.raises(BlockingIOError):
                queue.receive_nowait()
        else:
            assert queue.receive_nowait() == self._take()

    @rule()
    def receive_timeout_zero(self) -> None:
        if not self.model:
            with pytest.raises(TimeoutError):
                self.mq.receive(timeout=0)
        else:
            assert self.mq.receive(timeout=0) == self._take()

    @rule()
    def receive_into(self) -> None:
        buffer = bytearray(SIZE)
        if not self.model:
            with pytest.raises(TimeoutError):
                self.mq.receive_into(buffer, timeout=0)
        else:
            expected = self._take()
            n, priority = self.mq.receive_into(buffer, timeout=0)
            assert (bytes(buffer[:n]), priority) == expected

    @rule(max_messages=st.integers(1, CAPACITY + 2), timeout=st.sampled_from([None, 0]))
    def receive_many(self, max_messages: int, timeout: float | None) -> None:
        if not self.model:
            with pytest.raises(TimeoutError):
                self.mq.receive_many(max_messages, timeout=0)
            return
        expected = [self._take() for _ in range(min(max_messages, len(self.model)))]
        assert self.mq.receive_many(max_messages, timeout=timeout) == expected

    @rule()
    def drain(self) -> None:
        expected = [self._take() for _ in range(len(self.model))]
        assert list(self.other.drain()) == expected

    # -- what holds after every step ----------------------------------------------

    @invariant()
    def current_messages(self) -> None:
        attrs = self.other.attributes()
        assert attrs.current_messages == len(self.model)
        assert (attrs.capacity, attrs.max_message_size, attrs.nonblocking) == (
            CAPACITY,
            SIZE,
            False,
        )


QueueModel.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_queue_model = QueueModel.TestCase

"""Interoperability: the same queues from C (mq_send/mq_receive) and from posix_ipc."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _helpers import MakeQueue

from anyposixmq import Message, MessageQueue

_PEER_C = r"""
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* peer send NAME PRIO:TEXT...  |  peer receive NAME COUNT
   receive prints one "PRIO TEXT" line per message. */
int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int sending = strcmp(argv[1], "send") == 0;
    mqd_t q = mq_open(argv[2], sending ? O_WRONLY : O_RDONLY);
    if (q == (mqd_t)-1) {
        perror("mq_open");
        return 1;
    }
    if (sending) {
        for (int i = 3; i < argc; i++) {
            char *colon = strchr(argv[i], ':');
            if (colon == NULL)
                return 2;
            *colon = '\0';
            unsigned prio = (unsigned)strtoul(argv[i], NULL, 10);
            if (mq_send(q, colon + 1, strlen(colon + 1), prio) != 0) {
                perror("mq_send");
                return 1;
            }
        }
    } else {
        struct mq_attr attr;
        mq_getattr(q, &attr);
        char *buf = malloc((size_t)attr.mq_msgsize + 1);
        int count = atoi(argv[3]);
        for (int i = 0; i < count; i++) {
            unsigned prio;
            ssize_t n = mq_receive(q, buf, (size_t)attr.mq_msgsize, &prio);
            if (n < 0) {
                perror("mq_receive");
                return 1;
            }
            buf[n] = '\0';
            printf("%u %s\n", prio, buf);
        }
        free(buf);
    }
    mq_close(q);
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_peer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build the C peer program")
    folder = tmp_path_factory.mktemp("peer")
    source = folder / "peer.c"
    source.write_text(_PEER_C)
    program = folder / "peer"
    built = subprocess.run(
        [cc, "-O2", "-o", str(program), str(source), "-lrt"], capture_output=True, text=True
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build the C peer program: {built.stderr.strip()}")
    return program


def test_c_sends_we_receive(c_peer: Path, make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=4, max_message_size=64)
    subprocess.run(
        [str(c_peer), "send", str(mq.name), "1:low", "7:high", "7:high too", "0:zero"],
        check=True,
        timeout=30,
    )
    assert list(mq.drain()) == [(b"high", 7), (b"high too", 7), (b"low", 1), (b"zero", 0)]


def test_we_send_c_receives(c_peer: Path, make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=4, max_message_size=64)
    mq.send(b"first", 3)
    mq.send(Message(b"top", 31))
    mq.send(bytearray(b"zero"))
    mq.send(memoryview(b"again 3!")[:7], 3)
    result = subprocess.run(
        [str(c_peer), "receive", str(mq.name), "4"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout.splitlines() == ["31 top", "3 first", "3 again 3", "0 zero"]


def test_c_and_python_wait_for_each_other(c_peer: Path, make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=1, max_message_size=16)
    # The C program blocks in mq_receive until we send; we block until it sent.
    receiver = subprocess.Popen(
        [str(c_peer), "receive", str(mq.name), "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        mq.send(b"one", 1, timeout=30)
        mq.send(b"two", 2, timeout=30)
        out, _ = receiver.communicate(timeout=30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert out.splitlines() == ["1 one", "2 two"]


# -- posix_ipc --------------------------------------------------------------------------


@pytest.fixture
def posix_ipc_queue(make_queue: MakeQueue) -> Iterator[tuple[MessageQueue, object]]:
    posix_ipc = pytest.importorskip("posix_ipc")
    ours = make_queue(capacity=4, max_message_size=64)
    theirs = posix_ipc.MessageQueue(ours.name)
    try:
        yield ours, theirs
    finally:
        theirs.close()


def test_posix_ipc_sends_we_receive(posix_ipc_queue: tuple[MessageQueue, object]) -> None:
    ours, theirs = posix_ipc_queue
    theirs.send(b"low", priority=1)  # type: ignore[attr-defined]
    theirs.send(b"high", priority=9)  # type: ignore[attr-defined]
    theirs.send(b"high two", priority=9)  # type: ignore[attr-defined]
    theirs.send(b"\x00\xffbinary", priority=0)  # type: ignore[attr-defined]
    assert ours.receive(timeout=1) == (b"high", 9)
    assert ours.receive(timeout=1) == (b"high two", 9)
    assert ours.receive_into(bytearray(64), timeout=1) == (3, 1)
    assert ours.receive(timeout=1) == (b"\x00\xffbinary", 0)


def test_we_send_posix_ipc_receives(posix_ipc_queue: tuple[MessageQueue, object]) -> None:
    ours, theirs = posix_ipc_queue
    ours.send(b"zero")
    ours.send(b"five", 5)
    ours.send(Message(b"nine", 9))
    ours.send(bytearray(b"\x00\xffbinary"), 5)
    received = [theirs.receive(1) for _ in range(4)]  # type: ignore[attr-defined]
    assert received == [(b"nine", 9), (b"five", 5), (b"\x00\xffbinary", 5), (b"zero", 0)]


def test_posix_ipc_creates_we_open(queue_name: str) -> None:
    posix_ipc = pytest.importorskip("posix_ipc")
    theirs = posix_ipc.MessageQueue(
        queue_name, posix_ipc.O_CREX, max_messages=3, max_message_size=40
    )
    try:
        with MessageQueue(queue_name) as ours:
            assert (ours.capacity, ours.max_message_size) == (3, 40)
            ours.send(b"hello", 4)
            assert theirs.current_messages == 1
            assert theirs.receive(1) == (b"hello", 4)
    finally:
        theirs.close()

"""``anyposixmq metrics``: the queues and the system limits as Prometheus text.

The text is the Prometheus exposition format 0.0.4, which node_exporter's
textfile collector reads, and it ends with ``# EOF``, which makes it valid
OpenMetrics 1.0 too (for the 0.0.4 format it is a comment).  Only gauges, with
``# HELP`` and ``# TYPE``; each queue's samples carry a ``queue`` label.  A
queue that may not be opened has no ``messages``, ``capacity`` or
``max_message_size`` sample; one whose file may not be read has no
``data_bytes`` or ``notify_pid`` sample.

``--listen`` serves the same text at ``/metrics`` with the stdlib's
``http.server``: one request at a time, each answered from a new snapshot.
It listens on the loopback address unless another one is named.
"""

from __future__ import annotations

import http.server
import math
import select
import socket
import sys
from collections.abc import Callable, Iterable

from . import _snapshot
from ._cli_common import EXIT_INTERRUPTED, Failure, out
from ._interrupt import Interrupt
from ._limits import SystemLimits, limits

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

#: (metric, help, value of a queue); the metric is ``anyposixmq_queue_<name>``.
QUEUE_GAUGES: list[tuple[str, str, Callable[[_snapshot.QueueState], float | None]]] = [
    ("messages", "Messages in the queue now (mq_getattr).", lambda q: q.messages),
    ("capacity_messages", "Messages the queue holds at most.", lambda q: q.capacity),
    (
        "max_message_size_bytes",
        "Largest message the queue takes, in bytes.",
        lambda q: q.max_message_size,
    ),
    (
        "data_bytes",
        "Bytes of message data in the queue now (QSIZE of /dev/mqueue).",
        lambda q: q.data_bytes,
    ),
    ("full", "1 when the queue is full: senders wait or fail.", lambda q: _flag(q)),
    (
        "notify_pid",
        "The process registered for mq_notify on the queue; 0 when none.",
        lambda q: q.notify_pid,
    ),
    ("owner_uid", "The user id that owns the queue.", lambda q: q.uid),
    ("mode", "The queue's permission bits (0o600 is 384).", lambda q: q.mode),
]

#: (metric, help, value); the metric is ``anyposixmq_<name>``.
SYSTEM_GAUGES: list[tuple[str, str, Callable[[SystemLimits], float | None]]] = [
    ("msg_max", "Largest capacity of a new queue (fs.mqueue.msg_max).", lambda s: s.msg_max),
    (
        "msgsize_max_bytes",
        "Largest max_message_size of a new queue (fs.mqueue.msgsize_max).",
        lambda s: s.msgsize_max,
    ),
    (
        "msg_default",
        "Capacity of a queue created without one (fs.mqueue.msg_default).",
        lambda s: s.msg_default,
    ),
    (
        "msgsize_default_bytes",
        "max_message_size of a queue created without one (fs.mqueue.msgsize_default).",
        lambda s: s.msgsize_default,
    ),
    ("queues_max", "Queues that may exist at once (fs.mqueue.queues_max).", lambda s: s.queues_max),
    (
        "rlimit_msgqueue_bytes",
        "Bytes of queue storage one user may hold (soft RLIMIT_MSGQUEUE of this process).",
        lambda s: math.inf if s.rlimit_msgqueue is None else s.rlimit_msgqueue,
    ),
    ("priority_max", "Largest message priority.", lambda s: s.priority_max),
]


def _flag(q: _snapshot.QueueState) -> int | None:
    return None if q.capacity is None else int(q.full)


def _label(value: str) -> str:
    """A label value, escaped; a name that is not UTF-8 shows its bytes as ``\\xNN``."""
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(value)


def _family(name: str, help_text: str, samples: Iterable[tuple[str, float | None]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels} {_number(v)}" for labels, v in samples if v is not None]
    return lines


def render(queues: list[_snapshot.QueueState], system: SystemLimits) -> str:
    """The exposition text of a snapshot."""
    lines: list[str] = []
    for metric, help_text, value in QUEUE_GAUGES:
        samples = [(f'{{queue="{_label(q.name)}"}}', value(q)) for q in queues]
        lines += _family(f"anyposixmq_queue_{metric}", help_text, samples)
    lines += _family("anyposixmq_queues", "Queues that exist now.", [("", len(queues))])
    for metric, help_text, system_value in SYSTEM_GAUGES:
        lines += _family(f"anyposixmq_{metric}", help_text, [("", system_value(system))])
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def current() -> str:
    """The text for the queues and limits as they are now.

    :raises OSError: ``/dev/mqueue`` is not mounted (the message says how to mount it).
    """
    return render(_snapshot.take(), limits())


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "anyposixmq"

    def do_GET(self) -> None:
        if self.path.split("?")[0] not in ("/metrics", "/"):
            self.send_error(404, "the metrics are at /metrics")
            return
        try:
            body = current().encode("utf-8")
        except OSError as exc:
            self.send_error(503, str(exc))
            return
        openmetrics = "application/openmetrics-text" in self.headers.get("Accept", "")
        self.send_response(200)
        self.send_header("Content-Type", OPENMETRICS_TYPE if openmetrics else PROMETHEUS_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not news


def parse_listen(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``[::1]:9100`` for IPv6) -> (host, port); HOST is loopback if omitted."""
    host, _, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise Failure(f"--listen {text}: not [HOST:]PORT, such as 127.0.0.1:9649") from None
    if not 0 <= port <= 65535:
        raise Failure(f"--listen {text}: the port must be between 0 and 65535")
    return host, port


def serve(host: str, port: int) -> int:
    """Serve the metrics until Ctrl-C; return 130 then."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise Failure(f"--listen: cannot resolve {host}: {exc.strerror}") from None

    class Server(http.server.HTTPServer):
        address_family = family

    with Interrupt() as interrupt, Server((str(address[0]), port), _Handler) as server:
        bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
        shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
        out(f"serving metrics at http://{shown}:{bound_port}/metrics (Ctrl-C to stop)")
        sys.stdout.flush()
        while True:
            ready, _, _ = select.select([server.fileno(), interrupt.fileno()], [], [])
            # Read away what signals wrote before looking at `caught`: the
            # handler sets it before it writes, so nothing is lost.
            interrupt.discard()
            if interrupt.caught:
                return EXIT_INTERRUPTED
            if server.fileno() in ready:
                server.handle_request()


def run(listen: str | None) -> int:
    """``anyposixmq metrics [--listen [HOST:]PORT]``."""
    text = current()  # also when serving: say at once that /dev/mqueue is not mounted
    if listen is None:
        out(text.removesuffix("\n"))
        return 0
    return serve(*parse_listen(listen))

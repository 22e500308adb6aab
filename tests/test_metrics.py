"""``anyposixmq metrics``: Prometheus/OpenMetrics text, checked with prometheus_client's parsers.

Each test runs in a private IPC namespace with mqueuefs mounted in a private
mount namespace, so the queues it shows are only the ones it made.
"""

from __future__ import annotations

import signal
import subprocess
import urllib.error
import urllib.request

import _namespaces
import pytest
from _helpers import CHILD_CWD
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from anyposixmq._cli_common import Failure
from anyposixmq._metrics import parse_listen

#: Three queues: one full, one with messages, one whose name needs escaping.
SETUP = _namespaces.MOUNT + (
    "$APMQ create /jobs --capacity 4 --max-message-size 64 >/dev/null\n"
    "$APMQ send /jobs a b c d\n"
    "$APMQ create /events --capacity 10 --max-message-size 128 >/dev/null\n"
    "$APMQ send /events hello\n"
    '$PY -c \'import anyposixmq; anyposixmq.MessageQueue(b"/odd\\x22\\xff", create=True,'
    " capacity=2, max_message_size=8).close()'\n"
)
ODD = '/odd"\\xff'  # the name above (a quote, a byte that is not UTF-8) as its label


def samples(text: str, parse: object = parse_prometheus) -> dict[tuple[str, str | None], float]:
    """{(sample name, queue label): value} of the exposition *text*; every family a gauge."""
    found: dict[tuple[str, str | None], float] = {}
    for family in parse(text):  # type: ignore[operator]
        assert family.type == "gauge", family
        assert family.documentation, family
        for sample in family.samples:
            found[(sample.name, sample.labels.get("queue"))] = sample.value
    return found


def check(text: str) -> None:
    """What the three queues and the limits must show, in both formats."""
    assert text.endswith("# EOF\n")
    for parse in (parse_prometheus, parse_openmetrics):
        found = samples(text, parse)
        assert found[("anyposixmq_queue_messages", "/jobs")] == 4
        assert found[("anyposixmq_queue_capacity_messages", "/jobs")] == 4
        assert found[("anyposixmq_queue_full", "/jobs")] == 1
        assert found[("anyposixmq_queue_messages", "/events")] == 1
        assert found[("anyposixmq_queue_data_bytes", "/events")] == 5
        assert found[("anyposixmq_queue_max_message_size_bytes", "/events")] == 128
        assert found[("anyposixmq_queue_full", "/events")] == 0
        assert found[("anyposixmq_queue_notify_pid", "/events")] == 0
        assert found[("anyposixmq_queue_mode", "/events")] == 0o600
        assert found[("anyposixmq_queue_capacity_messages", ODD)] == 2
        assert found[("anyposixmq_queues", None)] == 3
        for key, value in _namespaces.NEW_NAMESPACE_LIMITS.items():
            name = "anyposixmq_msgsize_max_bytes" if key == "msgsize_max" else f"anyposixmq_{key}"
            assert found[(name, None)] == value
        assert ("anyposixmq_rlimit_msgqueue_bytes", None) in found


def test_metrics_text_parses() -> None:
    result = _namespaces.run(SETUP + "$APMQ metrics\n")
    assert result.returncode == 0, result.stderr
    assert "# TYPE anyposixmq_queue_messages gauge\n" in result.stdout
    assert "# HELP anyposixmq_queue_messages " in result.stdout
    check(result.stdout)


def test_metrics_listen_serves_it_over_http() -> None:
    _namespaces.require_unshare("-i")
    script = SETUP + "exec $APMQ metrics --listen 127.0.0.1:0\n"
    proc = subprocess.Popen(
        _namespaces.command(script),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=CHILD_CWD,
        env=_namespaces.environment(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving metrics at http://127.0.0.1:"), line
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            check(response.read().decode())
        request = urllib.request.Request(url, headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text;")
            check(response.read().decode())
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=30)
        assert missing.value.code == 404
        missing.value.close()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert (proc.returncode, err) == (130, "")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize("args", [[], ["--listen", "127.0.0.1:0"]])
def test_metrics_without_mqueuefs_says_how_to_mount_it(args: list[str]) -> None:
    result = _namespaces.run(
        _namespaces.UNMOUNT + "exec $APMQ metrics " + " ".join(args), ipc=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "mount -t mqueue none /dev/mqueue" in result.stderr


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("9649", ("127.0.0.1", 9649)),
        (":9649", ("127.0.0.1", 9649)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:9649", ("0.0.0.0", 9649)),
        ("[::1]:9649", ("::1", 9649)),
        ("[::]:80", ("::", 80)),
    ],
)
def test_listen_address(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["", "host:", "host:port", "1.2.3.4:65536", ":-1"])
def test_listen_address_bad(text: str) -> None:
    with pytest.raises(Failure, match="--listen"):
        parse_listen(text)

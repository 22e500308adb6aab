"""The pytest plugin for users' tests (``anyposixmq.pytest_plugin``).

This suite gets the plugin as any project does, through its entry point (the
fixtures of conftest.py are built on it).  Here its fixtures are used
directly, inner runs (pytester) check teardown and skipping, and fresh
projects outside the checkout run the examples of docs/pytest.rst.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _helpers import CHILD_CWD

import anyposixmq
from anyposixmq import AsyncMessageQueue, MessageQueue, SystemLimits, pytest_plugin
from anyposixmq.pytest_plugin import (
    AsyncMessageQueueFactory,
    MessageQueueFactory,
    _why_it_does_not_fit,
)

pytest_plugins = ["pytester"]


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest's own, with an ini file of its own: the inner runs must not take
    the configuration of this checkout, above them."""
    pytester.makeini("[pytest]\n")
    return pytester


PAGE = Path(__file__).resolve().parent.parent / "docs" / "pytest.rst"
LIMITS = anyposixmq.limits()
#: Whether this process may create a queue past fs.mqueue.msg_max.
PRIVILEGED = pytest_plugin._has_cap_sys_resource()
needs_msg_max = pytest.mark.skipif(
    LIMITS.msg_max is None or PRIVILEGED,
    reason="no fs.mqueue.msg_max here, or this process may go past it (CAP_SYS_RESOURCE)",
)


def gone(name: str) -> bool:
    """Whether no queue *name* exists."""
    try:
        MessageQueue(name).close()
    except FileNotFoundError:
        return True
    return False


def test_loaded_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.get_plugin("anyposixmq") is pytest_plugin


def test_importing_it_imports_nothing_more() -> None:
    # pytest imports it in every project that has the package installed.
    code = (
        "import sys, pytest, anyposixmq\n"
        "before = set(sys.modules)\n"
        "import anyposixmq.pytest_plugin\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHILD_CWD
    )
    assert out.stdout.strip() == "['anyposixmq.pytest_plugin']"


# -- the fixtures, in this suite's own run -------------------------------------


def test_mq_name_is_unique_and_free(mq_name: str, message_queue: MessageQueue) -> None:
    assert mq_name != message_queue.name
    assert mq_name.startswith(f"/pytest-{os.getpid()}-")
    assert gone(mq_name)


def test_message_queue_is_small_and_open_both_ways(message_queue: MessageQueue) -> None:
    assert (message_queue.capacity, message_queue.max_message_size) == (4, 128)
    message_queue.send(b"ping", priority=2)
    assert message_queue.receive(timeout=0) == (b"ping", 2)


def test_factory_makes_names_and_second_handles(make_message_queue: MessageQueueFactory) -> None:
    writer = make_message_queue(read=False)
    reader = make_message_queue(writer.name, create=False, write=False)
    other = make_message_queue(capacity=1)
    assert len({writer.name, other.name}) == 2
    writer.send(b"x")
    assert reader.receive(timeout=0) == (b"x", 0)
    assert (other.capacity, other.max_message_size) == (1, 128)


@needs_msg_max
def test_factory_makes_what_it_is_told(make_message_queue: MessageQueueFactory) -> None:
    # No skip: a test may check what its code does with a queue too big.
    assert LIMITS.msg_max is not None
    with pytest.raises(OSError, match="msg_max"):
        make_message_queue(capacity=LIMITS.msg_max + 1)


@pytest.mark.message_queue(capacity=2, max_message_size=16, strategy="thread")
def test_marker_sizes_the_queues(
    message_queue: MessageQueue, make_message_queue: MessageQueueFactory
) -> None:
    # The strategy is for async queues; the sync ones ignore it.
    assert (message_queue.capacity, message_queue.max_message_size) == (2, 16)
    assert make_message_queue(capacity=3).capacity == 3  # the call wins


@pytest.mark.message_queue(capacity=2, max_message_size=16)
class TestMarkerLevels:
    @pytest.mark.message_queue(capacity=3)
    def test_closest_wins_per_option(self, message_queue: MessageQueue) -> None:
        assert (message_queue.capacity, message_queue.max_message_size) == (3, 16)

    def test_class_marker(self, message_queue: MessageQueue) -> None:
        assert message_queue.capacity == 2


@pytest.mark.message_queue(capacity=2)
@pytest.mark.parametrize(
    ("message_queue", "sizes"),
    [({"capacity": 1}, (1, 128)), ({"max_message_size": 8}, (2, 8))],
    indirect=["message_queue"],
)
def test_indirect_parameter_over_marker(
    message_queue: MessageQueue, sizes: tuple[int, int]
) -> None:
    assert (message_queue.capacity, message_queue.max_message_size) == sizes


@pytest.mark.anyio
async def test_async_message_queue(async_message_queue: AsyncMessageQueue) -> None:
    assert async_message_queue.strategy == "poll"  # "auto" on Linux
    assert async_message_queue.capacity == 4
    await async_message_queue.send(b"ping")
    assert await async_message_queue.receive() == (b"ping", 0)


@pytest.mark.anyio
@pytest.mark.message_queue(strategy="thread", capacity=1)
async def test_marker_gives_the_strategy(
    async_message_queue: AsyncMessageQueue, make_async_message_queue: AsyncMessageQueueFactory
) -> None:
    assert (async_message_queue.strategy, async_message_queue.capacity) == ("thread", 1)
    other = make_async_message_queue(strategy="poll")
    assert (other.strategy, other.capacity) == ("poll", 1)
    await other.send(b"x")
    assert await other.receive() == (b"x", 0)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "async_message_queue", [{"strategy": "poll"}, {"strategy": "thread"}], indirect=True
)
async def test_async_indirect_parameter(async_message_queue: AsyncMessageQueue) -> None:
    await async_message_queue.send(b"x")
    assert await async_message_queue.receive_many(4) == [(b"x", 0)]


# -- teardown and skipping, in inner runs ---------------------------------------


def test_queues_are_removed_whatever_happens(pytester: pytest.Pytester, tmp_path: Path) -> None:
    record = tmp_path / "names"
    pytester.makepyfile(
        f"""
        import anyposixmq, pytest

        def note(name):
            with open({str(record)!r}, "a") as f:
                print(name, file=f)

        def test_created_then_failed(mq_name):
            anyposixmq.MessageQueue(mq_name, create=True, capacity=1, max_message_size=8).close()
            note(mq_name)
            assert False

        def test_never_created(mq_name):
            note(mq_name)

        def test_failed(message_queue, make_message_queue):
            note(message_queue.name)
            note(make_message_queue().name)
            other = make_message_queue()
            note(other.name)
            other.close()  # closed by the test: closing again is harmless
            raise RuntimeError("boom")

        def test_unlinked_by_the_test(message_queue):
            note(message_queue.name)
            message_queue.unlink()

        @pytest.mark.anyio
        async def test_async_failed(async_message_queue, make_async_message_queue):
            note(async_message_queue.name)
            note(make_async_message_queue(strategy="thread").name)
            await async_message_queue.send(b"left behind")
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    backends = 2 if _have_trio() else 1
    result.assert_outcomes(passed=2, failed=2 + backends)
    names = record.read_text().split()
    assert len(names) == 6 + 2 * backends
    assert [name for name in names if not gone(name)] == []


@needs_msg_max
@pytest.mark.parametrize("how", ["marker", "indirect", "async marker", "helper"])
def test_too_big_a_queue_skips(pytester: pytest.Pytester, tmp_path: Path, how: str) -> None:
    assert LIMITS.msg_max is not None
    big = LIMITS.msg_max + 1
    made = tmp_path / "made"
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture
        def earlier():
            open({str(made)!r}, "w").close()
        """
    )
    test = {
        "marker": f"""
            @pytest.mark.message_queue(capacity={big})
            def test_it(earlier, message_queue):
                pass
            """,
        "indirect": f"""
            @pytest.mark.parametrize("message_queue", [{{"capacity": {big}}}], indirect=True)
            def test_it(earlier, message_queue):
                pass
            """,
        "async marker": f"""
            @pytest.mark.anyio
            @pytest.mark.message_queue(capacity={big}, strategy="thread")
            async def test_it(earlier, async_message_queue):
                pass
            """,
        "helper": f"""
            from anyposixmq.pytest_plugin import skip_unless_fits

            def test_it():
                skip_unless_fits({big}, 8)
                raise AssertionError("not skipped")
            """,
    }[how]
    pytester.makepyfile("import pytest\n" + textwrap.dedent(test))
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=2 if how == "async marker" and _have_trio() else 1)
    # Reported at a line of the test's module, not of the plugin.
    reason = f"cannot hold a queue of capacity {big}, *more than fs.mqueue.msg_max"
    result.stdout.fnmatch_lines([f"SKIPPED [[]*] test_too_big_a_queue_skips.py:*: *{reason}*"])
    # Skipped before any fixture is set up.
    assert made.exists() is False


def test_marker_takes_keywords_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.message_queue(4)
        def test_it(message_queue):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*::test_it: the message_queue marker takes keyword arguments*"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.message_queue()\ndef test_it(): pass\n")
    pytester.runpytest("--strict-markers", "-p", "no:cacheprovider").assert_outcomes(passed=1)


# -- the arithmetic --------------------------------------------------------------

LINUX_DEFAULTS = SystemLimits(
    msg_max=10,
    msgsize_max=8192,
    msg_default=10,
    msgsize_default=8192,
    queues_max=256,
    priority_max=32767,
    rlimit_msgqueue=819200,
)


def why(capacity: int | None, size: int | None, **changes: object) -> str | None:
    limits = dataclasses.replace(LINUX_DEFAULTS, **changes)  # type: ignore[arg-type]
    return _why_it_does_not_fit(limits, capacity, size, may_exceed_maxima=False)


def test_what_fits() -> None:
    assert why(10, 8192) is None
    assert why(None, None) is None  # the defaults: 10 x 8192
    assert why(1, 1) is None


def test_each_limit_is_named() -> None:
    assert why(11, 8) == (
        "this system cannot hold a queue of capacity 11, max_message_size 8: "
        "capacity 11 is more than fs.mqueue.msg_max (10)"
    )
    assert why(None, 8193) == (
        "this system cannot hold a queue of capacity 10, max_message_size 8193: "
        "max_message_size 8193 is more than fs.mqueue.msgsize_max (8192)"
    )
    # 10 x (1000 + 96) bytes: more than an RLIMIT_MSGQUEUE of 10,000.
    assert why(10, 1000, rlimit_msgqueue=10_000) == (
        "this system cannot hold a queue of capacity 10, max_message_size 1000: "
        "it costs about 10960 bytes, more than RLIMIT_MSGQUEUE (10000 bytes; see ulimit -q)"
    )
    both = why(11, 8193)
    assert both is not None
    assert "msg_max (10); max_message_size 8193" in both


def test_defaults_are_capped_by_the_maxima() -> None:
    # A queue created without sizes gets min(msg_default, msg_max) messages.
    assert why(None, None, msg_default=20, rlimit_msgqueue=82880) is None
    assert why(None, None, msg_default=20, rlimit_msgqueue=82879) is not None


def test_what_is_not_reported_is_not_checked() -> None:
    unknown = SystemLimits(None, None, None, None, None, 31, None)
    assert _why_it_does_not_fit(unknown, 10**6, 10**6, may_exceed_maxima=False) is None
    assert why(None, 10**6, msg_default=None) is not None  # the size alone is known


def test_cap_sys_resource_lifts_the_maxima_not_the_rlimit() -> None:
    assert _why_it_does_not_fit(LINUX_DEFAULTS, 1000, 100, may_exceed_maxima=True) is None
    reason = _why_it_does_not_fit(LINUX_DEFAULTS, 1000, 8192, may_exceed_maxima=True)
    assert reason is not None
    assert "msg_max" not in reason
    assert "RLIMIT_MSGQUEUE" in reason


def page_skip_line() -> str:
    """The ``SKIPPED`` line that docs/pytest.rst shows, on one line."""
    quoted = re.search(r"SKIPPED \[1\] test_big\.py:\d+: .*?\(10\)", PAGE.read_text(), re.DOTALL)
    assert quoted is not None
    return " ".join(quoted.group(0).split())


def test_page_quotes_the_reason() -> None:
    assert page_skip_line().partition(": ")[2] == why(20, 8192)


# -- fresh projects outside the checkout -------------------------------------------

FRESH_TEST = """
import pytest


def test_sync(message_queue, mq_name):
    message_queue.send(b"x")
    assert message_queue.receive(timeout=1.0).data == b"x"


@pytest.mark.anyio
async def test_async(async_message_queue):
    await async_message_queue.send(b"ping")
    assert (await async_message_queue.receive()).data == b"ping"
"""


def _have_trio() -> bool:
    try:
        import trio  # noqa: F401
    except ImportError:
        return False
    return True


def run_pytest(
    project: Path, *args: str, env: dict[str, str] | None = None, no_trio: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in *project*, with this interpreter's packages;
    *no_trio*: as if trio were not installed."""
    (project / "pytest.ini").write_text("[pytest]\n")  # the project's own, as any has
    prelude = "import sys\n"
    if no_trio:
        prelude += "sys.modules['trio'] = None\n"  # import trio -> ImportError
        # (and without hypothesis's plugin, which loads trio's own plugin)
        args = ("-p", "no:hypothesispytest", *args)
    code = prelude + "import pytest\nsys.exit(pytest.main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=project,
        env={**os.environ, **(env or {})},
    )


def test_fresh_project_gets_the_fixtures(tmp_path: Path) -> None:
    pytest.importorskip("trio")
    (tmp_path / "test_fresh.py").write_text(FRESH_TEST)
    listing = run_pytest(tmp_path, "--fixtures")
    assert listing.returncode == 0, listing.stderr
    assert "fixtures defined from anyposixmq.pytest_plugin" in listing.stdout
    for name in [
        "mq_name",
        "message_queue",
        "async_message_queue",
        "make_message_queue",
        "make_async_message_queue",
    ]:
        assert re.search(rf"^{name} -- .*pytest_plugin\.py", listing.stdout, re.MULTILINE), name
    run = run_pytest(tmp_path, "-v", "-W", "error")
    assert run.returncode == 0, run.stdout + run.stderr
    for test in ["test_sync", "test_async[asyncio]", "test_async[trio]"]:
        assert f"test_fresh.py::{test} PASSED" in run.stdout, run.stdout


def test_fresh_project_without_trio(tmp_path: Path) -> None:
    (tmp_path / "test_fresh.py").write_text(FRESH_TEST)
    run = run_pytest(tmp_path, "-v", "-W", "error", no_trio=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_fresh.py::test_async[asyncio] PASSED" in run.stdout
    assert "trio" not in run.stdout


def test_fresh_project_without_anyios_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_fresh.py").write_text(FRESH_TEST)
    run = run_pytest(tmp_path, "-v", "-p", "no:anyio")
    assert "test_fresh.py::test_sync PASSED" in run.stdout, run.stdout + run.stderr
    # Only what needs anyio's plugin fails, and says what it misses.
    assert "fixture 'anyio_backend' not found" in run.stdout
    assert run_pytest(tmp_path, "--fixtures", "-p", "no:anyio").returncode == 0


def page_blocks(language: str) -> list[str]:
    """The ``code-block`` bodies of docs/pytest.rst in *language*, dedented."""
    blocks = re.findall(
        rf"^\.\. code-block:: {language}\n\n((?:   .*\n|\n)+)", PAGE.read_text(), re.MULTILINE
    )
    return [re.sub(r"^   ", "", block, flags=re.MULTILINE).strip() + "\n" for block in blocks]


@pytest.mark.timeout(180)
def test_page_examples_pass_in_a_fresh_project(tmp_path: Path) -> None:
    pytest.importorskip("trio")  # the page's conftest.py names it
    files = []
    for i, code in enumerate(page_blocks("python")):
        named = re.match(r"# (\w+\.py)\n", code)  # a block that names its file
        name = named.group(1) if named else f"test_page_{i}.py"
        (tmp_path / name).write_text(code)
        files.append(name)
    assert {"conftest.py", "test_big.py"} <= set(files)
    tests = [name for name in files if name != "conftest.py"]
    assert len(tests) >= 6
    run = run_pytest(tmp_path, "-v", "-W", "error", "-rs")
    assert run.returncode == 0, run.stdout + run.stderr
    for name in tests:
        assert f"{name}::" in run.stdout, name
    assert re.search(r"test_page_\d+\.py::test_async_round_trip\[trio\] PASSED", run.stdout)
    assert " FAILED" not in run.stdout
    assert " ERROR" not in run.stdout
    if _why_it_does_not_fit(LIMITS, 20, 8192, may_exceed_maxima=PRIVILEGED) == why(20, 8192):
        assert page_skip_line() in run.stdout  # Linux's default limits: the page's output

    # Each command line of the page, with ``pytest`` this interpreter's.
    commands = [
        re.sub(r"\s+#.*$", "", line) for block in page_blocks("sh") for line in block.splitlines()
    ]
    assert len(commands) == 3
    outcomes = {}
    for line in commands:
        words = shlex.split(line)
        env = dict(word.split("=", 1) for word in words if "=" in word and word[0].isupper())
        args = words[words.index("pytest") + 1 :]
        outcomes[line] = run_pytest(tmp_path, *args, env=env)
    listing = outcomes["pytest --fixtures"]
    assert listing.returncode == 0
    assert "message_queue -- " in listing.stdout
    without = outcomes["pytest -p no:anyposixmq"]
    assert without.returncode == 1  # the tests cannot find their fixtures
    assert "fixture 'message_queue' not found" in without.stdout
    autoload_off = outcomes[commands[2]]
    assert autoload_off.returncode == 0, autoload_off.stdout + autoload_off.stderr
    assert " passed" in autoload_off.stdout

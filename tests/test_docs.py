"""The examples in README.md and the docs run and print what they say they print.

Each ``python`` block runs in a fresh interpreter.  Queue names in it
(string literals such as ``"/jobs"``) are made unique for this run and
unlinked afterwards; a ``print(...)  # text`` line says that this print
writes ``text``.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import CHILD_CWD

import anyposixmq
from anyposixmq._cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The pages whose examples are tested here (the others test their own).
DOC_PAGES = ["index", "quickstart", "sync", "async", "cli", "limits", "platforms"]

_counter = itertools.count()
_QUEUE_NAME = re.compile(r"""(["'])(/[A-Za-z0-9._-]+)\1""")


def markdown_blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """(line number, code) of each fenced block in *language*."""
    blocks = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            start = i + 1
            end = start
            while lines[end].strip() != "```":
                end += 1
            blocks.append((start + 1, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return blocks


def rst_blocks(path: Path, *languages: str) -> list[tuple[int, str]]:
    """(line number, code) of each ``.. code-block::`` in one of *languages*
    (default python) in *path*."""
    wanted = {f".. code-block:: {language}" for language in languages or ("python",)}
    blocks = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() not in wanted:
            continue
        indent = len(line) - len(line.lstrip())
        body: list[str] = []
        j = i + 1
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            body.append(lines[j])
            j += 1
        code = "\n".join(body)
        blocks.append((i + 1, _dedent(code)))
    return blocks


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code).strip("\n") + "\n"


def expected_prints(code: str) -> tuple[list[str | None], bool]:
    """For each ``print(...)`` call in source order, the text its comment
    promises; and whether some print is in a loop (may run more than once)."""
    tree = ast.parse(code)
    loops = (ast.For, ast.AsyncFor, ast.While)
    looped: set[int] = set()
    for loop in ast.walk(tree):
        if isinstance(loop, loops):
            looped.update(id(node) for node in ast.walk(loop))
    calls = sorted(
        (node.lineno, node.end_lineno or node.lineno, id(node) in looped)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    )
    lines = code.splitlines()
    out: list[str | None] = []
    for _, end, _ in calls:
        last = lines[end - 1]
        out.append(last.split("  # ", 1)[1].strip() if "  # " in last else None)
    return out, any(in_loop for _, _, in_loop in calls)


def run_example(code: str, repeat: int = 1) -> str:
    """Run *code* with unique queue names; return its stdout (names put back).

    With *repeat*, the code runs that many times over in one interpreter.
    """
    renamed: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        new = f"{match.group(2)}-doc-{os.getpid()}-{next(_counter)}"
        renamed[new] = match.group(2)
        return f"{match.group(1)}{new}{match.group(1)}"

    source = _QUEUE_NAME.sub(rename, code)
    if repeat > 1:
        once = f"exec(compile({source!r}, '<example>', 'exec'), {{'__name__': '__main__'}})"
        source = f"for _ in range({repeat}):\n    {once}\n"
    try:
        result = subprocess.run(
            [sys.executable, "-c", source],
            capture_output=True,
            timeout=60,
            check=False,
            # Not the checkout: ``-c`` puts the working directory first on
            # sys.path, and the package under test may be an installed one.
            cwd=CHILD_CWD,
        )
    finally:
        for name in renamed:
            anyposixmq.unlink(name, missing_ok=True)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b"", result.stderr.decode()
    out = result.stdout.decode()
    for new, old in renamed.items():
        out = out.replace(new, old)
    return out


def check_example(code: str, repeat: int = 1) -> None:
    """Run *code*; each print's promised text must be what it printed.

    Straight-line prints map one to one onto the output lines; when a print
    sits in a loop, the promised texts must appear in the output in order.
    With *repeat*, the code runs that many times and must print the same
    each time.
    """
    expected, in_loop = expected_prints(code)
    runs = run_example(code, repeat).splitlines()
    out = runs[: len(runs) // repeat]
    assert runs == out * repeat, runs
    if not in_loop:
        assert len(out) == len(expected), (out, expected)
        for got, want in zip(out, expected, strict=True):
            if want is not None:
                assert got == want
        return
    rest = iter(out)
    for want in expected:
        if want is not None:
            assert any(got == want for got in rest), (want, out)


README_BLOCKS = markdown_blocks(README, "python")
DOC_BLOCKS = [
    (f"{page}.rst:{line}", code)
    for page in DOC_PAGES
    for line, code in rst_blocks(DOCS / f"{page}.rst")
]


def test_there_are_examples() -> None:
    assert README_BLOCKS
    assert len(DOC_BLOCKS) >= 5


@pytest.mark.parametrize(
    "code", [code for _, code in README_BLOCKS], ids=[f"README.md:{n}" for n, _ in README_BLOCKS]
)
def test_readme_example(code: str) -> None:
    check_example(code)


@pytest.mark.parametrize(
    "code", [code for _, code in DOC_BLOCKS], ids=[where for where, _ in DOC_BLOCKS]
)
def test_docs_example(code: str) -> None:
    if "import trio" in code:
        pytest.importorskip("trio")
    check_example(code)


def test_expected_prints_are_checked() -> None:
    # The checker itself: a wrong promise fails, a right one passes.
    check_example('print(1 + 1)  # 2\nprint("x")\n')
    with pytest.raises(AssertionError):
        check_example("print(1 + 1)  # 3\n")
    with pytest.raises(AssertionError):
        check_example('print("a")  # b\nprint("b")\n')  # promised to the wrong print
    check_example('for i in range(3):\n    print(i)  # 1\nprint("end")  # end\n')
    with pytest.raises(AssertionError):
        check_example("for i in range(3):\n    print(i)  # 5\n")
    with pytest.raises(AssertionError):  # promised texts out of order
        check_example('print("end")  # 1\nfor i in range(3):\n    print(i)  # end\n')


def test_example_queues_are_renamed_and_removed() -> None:
    code = (
        "import anyposixmq\n"
        'q = anyposixmq.MessageQueue("/jobs", create=True, capacity=1, max_message_size=8)\n'
        "print(q.name)  # /jobs\n"
        "q.close()\n"
    )
    check_example(code)
    result = subprocess.run(
        [sys.executable, "-c", code.replace("create=True", "create=False")],
        capture_output=True,
        check=False,
        timeout=60,
        cwd=CHILD_CWD,
    )
    # Had the example used "/jobs" itself, it would still be there.
    assert b"FileNotFoundError" in result.stderr


def test_readme_starts_with_the_demo() -> None:
    first = markdown_blocks(README, "sh")[0][1].splitlines()[0]
    assert first.split("#")[0].strip() == "python3 -m pip install . && anyposixmq demo"


def test_cli_page_covers_every_option() -> None:
    text = (DOCS / "cli.rst").read_text()
    parser = build_parser()
    sub = next(
        action
        for action in parser._actions
        if isinstance(action.choices, dict)  # the subcommands
    )
    assert isinstance(sub.choices, dict)
    for command, subparser in sub.choices.items():
        assert f"\n{command}\n" in text, command
        for action in subparser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in text, (command, option)


def test_toctree_names_every_page() -> None:
    index = (DOCS / "index.rst").read_text()
    pages = {p.stem for p in DOCS.glob("*.rst")} - {"index"}
    for page in pages:
        assert re.search(rf"^\s+{page}$", index, re.MULTILINE), page


# -- the command lines ------------------------------------------------------

#: Command lines of the docs that the tests do not run, and why.
NOT_RUN = {
    "python3 -m pip install . && anyposixmq demo": "installs the package",
    "python3 -m pip install nox && nox": "installs nox and runs the whole suite",
    "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue": "needs root",
    "nox -s bench": "the comparison suite takes minutes",
    "nox -s bench -- --rounds 3": "the comparison suite takes minutes",
    "python benchmarks/anatomy.py": "a benchmark of its own",
}
#: Pages whose ``sh``/``console`` blocks hold command lines.
COMMAND_PAGES = [README, *(DOCS / f"{page}.rst" for page in [*DOC_PAGES, "performance"])]
_COMMENT = re.compile(r"\s+#(\s.*)?$")
_ARG_QUEUE_NAME = re.compile(r"(?<![\w/])/[A-Za-z][\w.-]*(?![\w/])")
_COMMAND_WORD = re.compile(r"(^|[|&;]\s*)anyposixmq\b")


class Command:
    """One command line of a page, with the output a ``console`` block shows."""

    def __init__(self, where: str, line: str, output: list[str] | None) -> None:
        self.where = where
        self.line = line
        self.output = output  # None: not shown, so not checked


def page_commands(path: Path) -> list[Command]:
    """The command lines of *path*, in order: ``sh`` blocks (README and
    reST) and ``$`` lines of ``console`` blocks; ``#`` lines are root's."""
    if path.suffix == ".md":
        blocks = [(n, code, False) for n, code in markdown_blocks(path, "sh")]
    else:
        blocks = [(n, code, False) for n, code in rst_blocks(path, "sh")]
        blocks += [(n, code, True) for n, code in rst_blocks(path, "console")]
        blocks.sort()
    commands: list[Command] = []
    for start, code, console in blocks:
        for offset, text in enumerate(code.splitlines(), start):
            if not text.strip():
                continue
            where = f"{path.name}:{offset}"
            if not console:
                commands.append(Command(where, _COMMENT.sub("", text).strip(), None))
            elif text.startswith(("$ ", "# ")):
                commands.append(Command(where, _COMMENT.sub("", text[2:]).strip(), []))
            else:
                output = commands[-1].output
                assert output is not None, where
                output.append(text)
    return commands


def _run_command(command: Command, names: dict[str, str], cwd: Path) -> None:
    """Run one command line, with unique queue names, checking its status and output."""

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(
            match.group(0), f"{match.group(0)}-doc-{os.getpid()}-{next(_counter)}"
        )

    line = _ARG_QUEUE_NAME.sub(rename, command.line)
    # -I: the package under test, never a checkout in the working directory.
    program = f"{shlex.quote(sys.executable)} -I -m anyposixmq"
    line = _COMMAND_WORD.sub(lambda m: m.group(1) + program, line)
    if "--follow" in line:
        _run_until_interrupted(command, line, names)
        return
    result = subprocess.run(line, shell=True, capture_output=True, timeout=60, cwd=cwd, check=False)
    wanted = 0
    if command.line == "anyposixmq list" and not os.path.ismount("/dev/mqueue"):
        wanted = 1  # it says how to mount mqueuefs (tested in test_cli)
    assert result.returncode == wanted, (command.where, command.line, result.stderr.decode())
    if command.output is not None:
        out = result.stdout.decode()
        for old, new in names.items():
            out = out.replace(new, old)
        assert out.splitlines() == command.output, (command.where, command.line)


def _run_until_interrupted(command: Command, line: str, names: dict[str, str]) -> None:
    """Run a ``--follow`` line until it waits on its queue, then press Ctrl-C."""
    queues = set(names.values())
    proc = subprocess.Popen(shlex.split(line), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not _has_open(proc.pid, queues):
            assert proc.poll() is None, command.where
            assert time.monotonic() < deadline, command.where
            time.sleep(0.05)
        time.sleep(0.2)  # from opening the queue to waiting on it
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (command.where, err.decode())
    assert b"Traceback" not in err


def _has_open(pid: int, queues: set[str]) -> bool:
    """Whether process *pid* has one of *queues* open (Linux's /proc)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in queues:
                return True
    return False


PAGE_COMMANDS = {path.name: page_commands(path) for path in COMMAND_PAGES}


def test_every_command_line_is_run_or_says_why_not() -> None:
    lines = {c.line for commands in PAGE_COMMANDS.values() for c in commands}
    assert set(NOT_RUN) <= lines, set(NOT_RUN) - lines  # no stale entries
    run = [line for line in lines - set(NOT_RUN) if not _COMMAND_WORD.search(line)]
    assert run == [], "a command line that is neither run nor in NOT_RUN"
    assert len(lines - set(NOT_RUN)) >= 10


@pytest.mark.timeout(180)
@pytest.mark.parametrize("page", [name for name, cmds in PAGE_COMMANDS.items() if cmds])
def test_command_lines_run(page: str, tmp_path: Path) -> None:
    # In order, as a reader would type them, each queue name made unique.
    names: dict[str, str] = {}
    try:
        for command in PAGE_COMMANDS[page]:
            if command.line not in NOT_RUN:
                _run_command(command, names, tmp_path)
    finally:
        for name in names.values():
            anyposixmq.unlink(name, missing_ok=True)


def test_command_line_checker() -> None:
    # A wrong exit status or output fails, a right one passes.
    names: dict[str, str] = {}
    _run_command(
        Command("x", "anyposixmq --version", [f"anyposixmq {anyposixmq.__version__}"]), names, ROOT
    )
    with pytest.raises(AssertionError):
        _run_command(Command("x", "anyposixmq --version", ["anyposixmq 0"]), names, ROOT)
    with pytest.raises(AssertionError):
        _run_command(Command("x", "anyposixmq info /no-such-queue", None), names, ROOT)
    assert list(names) == ["/no-such-queue"]


def test_readme_trio_example_has_no_race() -> None:
    # It once sent "stop" at a higher priority than the jobs: "stop" could
    # overtake the last job, which the example then dropped (15 runs in 20).
    pytest.importorskip("trio")
    (code,) = [code for _, code in README_BLOCKS if "import trio" in code]
    check_example(code, repeat=20)

"""The examples in README.md and the docs run and print what they say they print.

Each ``python`` block runs in a fresh interpreter.  Queue names in it
(string literals such as ``"/jobs"``) are made unique for this run and
unlinked afterwards; a ``print(...)  # text`` line says that this print
writes ``text``.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import subprocess
import sys
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


def rst_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, code) of each ``.. code-block:: python`` in *path*."""
    blocks = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() != ".. code-block:: python":
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


def run_example(code: str) -> str:
    """Run *code* with unique queue names; return its stdout (names put back)."""
    renamed: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        new = f"{match.group(2)}-doc-{os.getpid()}-{next(_counter)}"
        renamed[new] = match.group(2)
        return f"{match.group(1)}{new}{match.group(1)}"

    source = _QUEUE_NAME.sub(rename, code)
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


def check_example(code: str) -> None:
    """Run *code*; each print's promised text must be what it printed.

    Straight-line prints map one to one onto the output lines; when a print
    sits in a loop, the promised texts must appear in the output in order.
    """
    expected, in_loop = expected_prints(code)
    out = run_example(code).splitlines()
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

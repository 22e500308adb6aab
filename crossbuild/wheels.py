"""Build the sdist and the four abi3 wheels with zig, check each wheel, and run each one.

``nox -s wheel`` runs this script (``nox -s release`` too, which then copies
the files into ``dist/``); it needs an x86_64 Debian host (root, for
``apt-get install qemu-user`` when ``qemu-aarch64`` is missing).  Usage::

    python crossbuild/wheels.py WORK [--python 3.10 ...] [--test-requirement REQ ...]
                                     [--release-dir DIR]

Everything it makes or downloads stays in WORK (the session's tmp dir); the
Debian packages it fetches are kept there between runs.  The facts that shape
it, each found by trying:

- ``zig cc -target x86_64-linux-gnu.2.17`` (``CC``, and ``LDSHARED`` with
  ``-shared``) builds the cffi extension as it is, for any glibc and for
  musl.  Before glibc 2.34 ``mq_open`` and the rest live in ``librt``, where
  on x86_64 they carry the version ``GLIBC_2.3.4`` (``_ffi.py`` links
  ``-lrt``); ``clock_gettime`` is ``GLIBC_2.17`` in ``libc`` (and aarch64
  starts at 2.17), so 2.17 is the oldest glibc.
- The host's Python headers serve every LP64 target: the binding uses the
  limited API only, where x86_64's and aarch64's ``pyconfig.h`` agree.
- setuptools tags a wheel after the host (``linux_x86_64``), and auditwheel
  refuses an aarch64 binary under that tag: aarch64 builds pass
  ``--plat-name=linux_aarch64``.  The ``build/`` directory is named after the
  host too, so a second target built in one tree would pack the first one's
  ``.so``: each target is built from a fresh unpack of the sdist.
- zig's musl has the soname ``libc.so``, on which ``auditwheel show`` crashes
  (it reads glibc's ``libc.so`` linker script); musllinux wheels name
  ``libc.musl-<arch>.so.1``, so ``patchelf`` renames the dependency.  On a
  glibc host ``auditwheel repair`` takes no ``--plat musllinux_...`` but
  finds the musllinux tag by itself; for aarch64 it takes no ``--plat`` at
  all, so no target is given one and the tag it picks is checked instead.
- No docker image is reachable, so no manylinux image: instead each wheel's
  ``.so`` is checked for what it imports (``readelf --dyn-syms``).
- The aarch64 glibc wheel runs on Debian's arm64 CPython: its packages are
  fetched with apt-get under a private state directory (the host's dpkg keeps
  its architectures), unpacked with ``dpkg -x`` into a root, and run by
  ``qemu-aarch64 -L ROOT``.  The packages it needs go into that root's
  ``dist-packages`` with the host's pip (``--platform``), so ``python -I``
  finds them too.  There is no binfmt_misc here, so a child process that the
  emulated Python starts (``sys.executable``) would be an aarch64 binary the
  kernel cannot run: Python runs with ``argv[0]`` (``qemu-aarch64 -0``) set to
  a small host script that starts it under qemu again, so its children run
  under qemu too.
- qemu-user does not implement ``mq_notify`` (ENOSYS): tests that need it are
  skipped there, and said so (``crossbuild/qemu_plugin.py``).
- Neither PyPI nor Debian has a musl CPython.  What runs the musl wheels
  instead: ``crossbuild/driver.c``, which calls every function of the shim,
  is linked against the wheel's own ``_binding.abi3.so`` (with stubs for the
  dozen Python C-API functions it imports, never called) and run by musl's
  dynamic linker from Debian's ``musl`` package (1.2.3), natively for x86_64
  and under ``qemu-aarch64`` for aarch64, on a real queue of this kernel.
  Before that, every C library symbol the ``.so`` imports must be one that
  this musl's ``libc.so`` exports.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    """One wheel: the platform tag auditwheel must give it, and zig's target."""

    tag: str
    zig: str

    @property
    def machine(self) -> str:
        return self.zig.partition("-")[0]

    @property
    def musl(self) -> bool:
        return "-musl" in self.zig


TARGETS = [
    Target("manylinux_2_17_x86_64", "x86_64-linux-gnu.2.17"),
    Target("manylinux_2_17_aarch64", "aarch64-linux-gnu.2.17"),
    Target("musllinux_1_2_x86_64", "x86_64-linux-musl"),
    Target("musllinux_1_2_aarch64", "aarch64-linux-musl"),
]
#: The oldest glibc the manylinux wheels are for: the newest symbol version they may import.
OLDEST_GLIBC = (2, 17)
#: crossbuild/driver.c is compiled as ``nox -s crossbuild`` compiles it.
DRIVER_FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]

#: What the sdist must hold besides the package: the C, the tests, the docs.
SDIST_MUST_HOLD = [
    "LICENSE",
    "anyposixmq/_shim.c",
    "anyposixmq/_shim.h",
    "anyposixmq/_ffi.py",
    "anyposixmq/py.typed",
    "setup.py",
    "noxfile.py",
    "crossbuild/driver.c",
    "crossbuild/wheels.py",
    "crossbuild/qemu_plugin.py",
    "crossbuild/round_trip.py",
    "tests/conftest.py",
    "tests/_helpers.py",
    "docs/conf.py",
    "docs/index.rst",
    "docs/installing.rst",
]

#: Run by every interpreter a glibc wheel is installed into.
ROUND_TRIP = HERE / "round_trip.py"

#: The test modules run under qemu: those that work the binding, sync and
#: async (every backend and strategy), errors, limits and argument checks.
#: Not those that mostly start interpreters (cli, docs, names, the fault
#: tests' inner pytest), storm a queue with signals (signals), or need a
#: compiler (bench): under emulation they take many minutes (the whole suite
#: was 3/4 done after 13), and an emulated signal storm hits pytest-timeout.
#: The whole suite runs natively on x86_64 (``nox -s tests``).
QEMU_TEST_MODULES = [
    "test_sync_messages.py",
    "test_sync_timeouts.py",
    "test_sync_open.py",
    "test_sync_lifecycle.py",
    "test_sync_limits.py",
    "test_sync_threads.py",
    "test_notify.py",
    "test_errors.py",
    "test_hardening_input.py",
    "test_async.py",
    "test_async_cancel.py",
    "test_async_descriptor.py",
    "test_async_run.py",
    "test_hardening_async.py",
    "test_interop.py",
    "test_exports.py",
    "test_packaging.py",
]


def log(text: str) -> None:
    print(f"wheels> {text}", flush=True)


def run(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    quiet: bool = False,
) -> str:
    """Run a command, showing it (and its output unless *quiet*); fail on a
    non-zero status.  Its output, stdout and stderr together."""
    words = [str(a) for a in args]
    log(shlex.join(words))
    with subprocess.Popen(
        words,
        env=None if env is None else {**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if not quiet:
                sys.stdout.write(line)
                sys.stdout.flush()
    output = "".join(lines)
    if process.returncode != 0:
        if quiet:
            sys.stdout.write(output)
        fail(f"failed with status {process.returncode}: {shlex.join(words)}")
    return output


def fail(text: str) -> NoReturn:
    sys.exit(f"wheels> {text}")


@contextmanager
def step(title: str) -> Iterator[None]:
    log(f"--- {title}")
    start = time.monotonic()
    yield
    log(f"--- {title}: {time.monotonic() - start:.0f} s")


# -- building ---------------------------------------------------------------


def build_sdist(out: Path) -> Path:
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, ROOT)
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        held = {member.partition("/")[2] for member in archive.getnames()}
    if missing := sorted(set(SDIST_MUST_HOLD) - held):
        fail(f"{sdist.name} lacks {', '.join(missing)}")
    return sdist


def build_wheel(sdist: Path, target: Target, work: Path) -> Path:
    """The wheel of *target*, built from a fresh unpack of *sdist* with zig, repaired."""
    tree = work / target.tag
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(tree, filter="data")
    (source,) = tree.iterdir()
    zig = f"{shlex.quote(sys.executable)} -m ziglang cc -target {target.zig}"
    build = [
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        str(tree / "raw"),
    ]
    if target.machine != platform.machine():
        build.append(f"-C--build-option=--plat-name=linux_{target.machine}")
    run(*build, source, env={"CC": zig, "LDSHARED": f"{zig} -shared"})
    (raw,) = (tree / "raw").glob("*.whl")
    if target.musl:
        unpacked = tree / "unpacked"
        run(sys.executable, "-m", "wheel", "unpack", "--dest", unpacked, raw)
        (so,) = unpacked.glob("*/anyposixmq/_binding.abi3.so")
        run("patchelf", "--replace-needed", "libc.so", f"libc.musl-{target.machine}.so.1", so)
        raw.unlink()
        (contents,) = unpacked.iterdir()
        run(sys.executable, "-m", "wheel", "pack", "--dest-dir", tree / "raw", contents)
        (raw,) = (tree / "raw").glob("*.whl")
    run("auditwheel", "repair", "--wheel-dir", tree / "repaired", raw)
    (repaired,) = (tree / "repaired").glob("*.whl")
    if not re.search(rf"-cp310-abi3-(.+\.)?{target.tag}(\..+)?\.whl$", repaired.name):
        fail(f"{repaired.name} is not a cp310-abi3 {target.tag} wheel")
    return repaired


# -- checking ---------------------------------------------------------------


def binding_of(wheel: Path, into: Path) -> Path:
    """The wheel's compiled binding, extracted into *into*."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".so")]
        return Path(archive.extract(name, into))


def imported_symbols(so: Path) -> list[str]:
    """The undefined dynamic symbols of *so*, ``name@VERSION`` where versioned."""
    table = run("readelf", "--dyn-syms", "--wide", so, quiet=True)
    symbols = []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0].endswith(":") and fields[6] == "UND":
            symbols.append(fields[7])
    return symbols


def exported_symbols(library: Path) -> set[str]:
    """The names a shared library defines."""
    names = set()
    for line in run("readelf", "--dyn-syms", "--wide", library, quiet=True).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0].endswith(":") and fields[6] != "UND":
            names.add(fields[7].partition("@")[0])
    return names


def is_python_api(name: str) -> bool:
    return name.startswith(("Py", "_Py"))


def check_wheel(wheel: Path, target: Target, root: Path, scratch: Path) -> list[str]:
    """auditwheel's tag and the symbols the binding imports; the Python C-API names."""
    with zipfile.ZipFile(wheel) as archive:
        if not any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist()):
            fail(f"{wheel.name} does not hold the LICENSE")
    shown = " ".join(run("auditwheel", "show", wheel).split())
    found = re.search(r'is consistent with the following platform tag: "([^"]+)"', shown)
    if found is None or found.group(1) != target.tag:
        fail(f"auditwheel gives {wheel.name} {found and found.group(1)}, not {target.tag}")
    symbols = imported_symbols(binding_of(wheel, scratch / target.tag))
    python_api = sorted(s for s in symbols if is_python_api(s))
    libc = [s for s in symbols if not is_python_api(s)]
    if target.musl:
        musl_libc = musl_loader(root, target.machine)
        exported = exported_symbols(musl_libc)
        if missing := sorted(s for s in libc if s.partition("@")[0] not in exported):
            fail(f"{wheel.name} imports what {musl_libc} does not export: {missing}")
        log(f"{target.tag}: the {len(libc)} libc symbols it imports are all in musl's libc.so")
    else:
        versions = [re.fullmatch(r"[^@]+@GLIBC_(\d+)\.(\d+)(\.\d+)?", s) for s in libc]
        if None in versions:
            fail(f"{wheel.name}: a libc symbol without a GLIBC_ version: {libc}")
        newest = max((int(v.group(1)), int(v.group(2))) for v in versions if v is not None)
        if newest > OLDEST_GLIBC:
            fail(f"{wheel.name} needs GLIBC_{newest[0]}.{newest[1]}: newer than its tag allows")
        log(f"{target.tag}: {len(libc)} libc symbols, the newest GLIBC_{newest[0]}.{newest[1]}")
    return python_api


def check_pip_picks(wheels: dict[Target, Path], house: Path, scratch: Path) -> None:
    """pip, told it runs on each target's platform, picks that target's wheel."""
    for target, wheel in wheels.items():
        into = scratch / f"pip-{target.tag}"
        shutil.rmtree(into, ignore_errors=True)
        pick = ["--platform", target.tag, "--python-version", "3.10", "--implementation", "cp"]
        pick += ["--abi", "cp310", "--only-binary=:all:", "--no-deps", "--no-index"]
        run(sys.executable, "-m", "pip", "download", *pick, "--find-links", house,
            "--dest", into, "anyposixmq")  # fmt: skip
        if [p.name for p in into.iterdir()] != [wheel.name]:
            fail(f"pip on {target.tag} did not pick {wheel.name}")


# -- the Debian packages: an arm64 CPython, and musl for both machines -------


def debian_packages(work: Path) -> Path:
    """A root holding Debian's arm64 ``python3`` and ``musl``, and amd64's ``musl``.

    Fetched with apt-get into WORK under a private state directory (with the
    host's sources), so the host's dpkg and apt lists are left as they are;
    kept between runs.
    """
    root = work / "root"
    done = work / "root.complete"
    if done.exists():
        log(f"{root}: kept from an earlier run")
        return root
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("lists/partial", "cache/archives/partial", "debs"):
        (work / sub).mkdir(parents=True)
    (work / "status").touch()
    config = work / "apt.conf"
    config.write_text(
        'APT::Architecture "arm64";\n'
        'APT::Architectures { "arm64"; "amd64"; };\n'
        'APT::Sandbox::User "root";\n'
        f'Dir::State "{work}";\n'
        f'Dir::State::Lists "{work}/lists";\n'
        f'Dir::State::status "{work}/status";\n'
        f'Dir::Cache "{work}/cache";\n'
    )
    apt = {"APT_CONFIG": str(config), "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-q", env=apt)
    wanted = ["python3-minimal", "libpython3-stdlib", "musl"]
    no = ["--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces"]
    tree = run("apt-cache", "depends", "--recurse", *no, "--no-enhances", *wanted, env=apt)
    names = sorted({line for line in tree.splitlines() if line[:1] not in (" ", "<")})
    run("apt-get", "download", "-q", *names, "musl:amd64", env=apt, cwd=work / "debs")
    for deb in sorted((work / "debs").glob("*.deb")):
        run("dpkg-deb", "--extract", deb, root)
    done.touch()
    return root


def musl_loader(root: Path, machine: str) -> Path:
    """musl's ``libc.so``, which is its dynamic linker too, for *machine*."""
    return root / "lib" / f"{machine}-linux-musl" / "libc.so"


# -- running ----------------------------------------------------------------


def run_x86_64_glibc(wheel: Path, pythons: Sequence[str], work: Path) -> str:
    """Install into fresh venvs with no compiler; the demo and the round trip there."""
    no_compiler = {"CC": "false", "CXX": "false", "LDSHARED": "false"}
    ran = []
    for version in pythons:
        venv = work / f"venv-{version}"
        shutil.rmtree(venv, ignore_errors=True)
        run(f"python{version}", "-m", "venv", venv)
        python = venv / "bin" / "python"
        install = ["-m", "pip", "install", "--only-binary=:all:", "--no-build-isolation"]
        run(python, *install, f"{wheel}[trio,uvloop]", env=no_compiler, cwd=work)
        run(venv / "bin" / "anyposixmq", "demo", cwd=work)
        version, _ = round_trip(python, "x86_64", work)
        ran.append(version)
    return (
        f"CPython {' and '.join(ran)}, fresh venvs, CC=false: demo, round trip and timed"
        " receive (platform.machine() x86_64)"
    )


def round_trip(python: Path, machine: str, work: Path) -> tuple[str, str]:
    """Run crossbuild/round_trip.py; the Python version and the machine it reports."""
    out = run(python, ROUND_TRIP, cwd=work)
    found = re.search(r"^Python (\S+) on (\S+): round trip", out, re.MULTILINE)
    if found is None or found.group(2) != machine:
        fail(f"the round trip did not run on {machine}: {out}")
    return found.group(1), found.group(2)


def qemu_python(root: Path) -> Path:
    """A host script that runs the root's arm64 ``python3`` under qemu-aarch64.

    It is also the emulated Python's ``argv[0]``, so ``sys.executable`` names
    it and the children that Python starts run under qemu as well.
    """
    wrapper = root / "usr" / "bin" / "python3-qemu"
    python = root / "usr" / "bin" / "python3"
    wrapper.write_text(
        f'#!/bin/sh\nexec qemu-aarch64 -L {shlex.quote(str(root))} -0 "$0" '
        f'{shlex.quote(str(python))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def run_aarch64_glibc(wheel: Path, root: Path, requirements: Sequence[str], work: Path) -> str:
    """Install into Debian's arm64 CPython; round trip, demo and tests under qemu."""
    python = qemu_python(root)
    minor = run(python, "-c", "import sys; print(*sys.version_info[:2], sep='.')").strip()
    site = root / "usr" / "lib" / "python3" / "dist-packages"
    shutil.rmtree(site, ignore_errors=True)
    target = ["--target", str(site), "--platform", "manylinux_2_17_aarch64", "--only-binary=:all:"]
    abi = "cp" + minor.replace(".", "")
    target += ["--python-version", minor, "--implementation", "cp", "--abi", abi]
    run(sys.executable, "-m", "pip", "install", "--no-compile", *target,
        f"{wheel}[trio,uvloop]", *requirements)  # fmt: skip
    version, _ = round_trip(python, "aarch64", work)
    run(python, "-m", "anyposixmq", "demo", cwd=work)
    tests = [str(ROOT / "tests" / module) for module in QEMU_TEST_MODULES]
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-m", "not stress"]
    report = run(
        python, "-m", "pytest", *config, "-p", "qemu_plugin", "-q", *tests,
        env={"PYTHONPATH": str(HERE)}, cwd=work,
    )  # fmt: skip
    summary = report.strip().splitlines()[-1].strip("= ")
    return (
        f"Debian's CPython {version} (arm64) under qemu-aarch64: round trip and timed"
        f" receive (platform.machine() aarch64), demo, {len(tests)} test modules: {summary}"
    )


def run_musl(wheel: Path, target: Target, python_api: list[str], root: Path, work: Path) -> str:
    """crossbuild/driver.c against the wheel's binding, run by musl's dynamic linker."""
    here = work / target.tag
    shutil.rmtree(here, ignore_errors=True)
    so = binding_of(wheel, here)
    stubs = here / "python_stubs.c"
    lines = ["#include <stdlib.h>", "/* The Python C API the binding imports: never called. */"]
    lines += [f"void {name}(void) {{ abort(); }}" for name in python_api]
    stubs.write_text("\n".join(lines) + "\n")
    driver = here / "driver"
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", target.zig, *DRIVER_FLAGS]
    run(*zig, f"-I{ROOT / 'anyposixmq'}", ROOT / "crossbuild" / "driver.c", stubs, so,
        "-Wl,--export-dynamic", "-o", driver)  # fmt: skip
    needed = run("readelf", "--dynamic", driver, quiet=True)
    if f"[{so}]" not in needed:
        fail(f"{driver} does not load the wheel's binding")
    loader = musl_loader(root, target.machine)
    emulator = [] if target.machine == platform.machine() else [f"qemu-{target.machine}"]
    out = run(*emulator, loader, driver, cwd=here)
    checks = re.search(r"(\d+) checks, 0 failed", out)
    if checks is None:
        fail(f"the driver did not report its checks: {out}")
    where = "natively" if not emulator else f"under {emulator[0]}"
    notify = "" if "mq_notify: not emulated" not in out else " (not mq_notify: ENOSYS)"
    return (
        f"crossbuild/driver.c linked against the wheel's _binding.abi3.so, run by Debian's"
        f" musl dynamic linker {where}: {checks.group(1)} checks passed{notify}"
    )


# -- the whole -----------------------------------------------------------------


def ensure_qemu() -> None:
    if shutil.which("qemu-aarch64") is not None:
        return
    if os.geteuid() != 0:
        fail("qemu-aarch64 not found: install Debian's qemu-user")
    apt = {"DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-q", env=apt)
    run("apt-get", "install", "-y", "-q", "qemu-user", env=apt)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("work", type=Path, help="where to build, download and run")
    parser.add_argument("--python", action="append", default=[], help="e.g. 3.10 (repeat)")
    parser.add_argument("--test-requirement", action="append", default=[], metavar="REQ")
    parser.add_argument("--release-dir", type=Path, help="copy the checked files here")
    args = parser.parse_args(argv)
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        fail("the wheels are built and run on x86_64 Linux")
    start = time.monotonic()
    work: Path = args.work.resolve()
    house = work / "wheelhouse"
    for old in (house, work / "build", work / "scratch"):
        shutil.rmtree(old, ignore_errors=True)
    house.mkdir(parents=True)
    scratch = work / "scratch"

    with step("the sdist"):
        sdist = build_sdist(house)
    wheels: dict[Target, Path] = {}
    for target in TARGETS:
        with step(f"the {target.tag} wheel, with zig cc -target {target.zig}"):
            wheels[target] = Path(shutil.copy2(build_wheel(sdist, target, work / "build"), house))
    with step("Debian's arm64 CPython and musl"):
        ensure_qemu()
        root = debian_packages(work / "debian")
    python_api: dict[Target, list[str]] = {}
    with step("checks: auditwheel, symbols, abi3audit, twine, pip's choice"):
        for target, wheel in wheels.items():
            python_api[target] = check_wheel(wheel, target, root, scratch)
        run("abi3audit", "--strict", "--verbose", *wheels.values())
        run("twine", "check", "--strict", sdist, *wheels.values())
        check_pip_picks(wheels, house, scratch)

    ran: dict[Target, str] = {}
    for target, wheel in wheels.items():
        with step(f"running the {target.tag} wheel"):
            if target.musl:
                ran[target] = run_musl(wheel, target, python_api[target], root, scratch)
            elif target.machine == "x86_64":
                ran[target] = run_x86_64_glibc(wheel, args.python, scratch)
            else:
                ran[target] = run_aarch64_glibc(wheel, root, args.test_requirement, scratch)

    if args.release_dir is not None:
        release: Path = args.release_dir
        release.mkdir(parents=True, exist_ok=True)
        for old in release.glob("anyposixmq-*"):
            old.unlink()
        for built in (sdist, *wheels.values()):
            shutil.copy2(built, release)
    where = args.release_dir or house
    log(f"sdist and wheels, all checked, in {where} ({time.monotonic() - start:.0f} s):")
    log(f"  {sdist.name}")
    for target, wheel in wheels.items():
        log(f"  {target.tag}: {wheel.name}")
        log(f"      {ran[target]}")
    log(f"oldest glibc: {'.'.join(map(str, OLDEST_GLIBC))} (manylinux_2_17); musl 1.2")


if __name__ == "__main__":
    main()

"""What the package claims about Pythons and platforms agrees with what is checked.

The sessions that check the claims live in noxfile.py (``tests`` and
``typecheck`` on each of ``PYTHONS``, ``wheel``, ``crossbuild``); these tests
keep the claims and the checks from drifting apart.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import anyposixmq._binding

ROOT = Path(__file__).resolve().parent.parent


def nox_pythons() -> list[str]:
    """``PYTHONS`` of noxfile.py, read without importing nox."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "PYTHONS" for t in targets):
                assert node.value is not None
                value = ast.literal_eval(node.value)
                assert isinstance(value, list)
                return [str(v) for v in value]
    raise AssertionError("noxfile.py has no PYTHONS")


def test_classifiers_name_exactly_the_tested_pythons() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    named = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    assert named == nox_pythons()
    assert f'requires-python = ">={nox_pythons()[0]}"' in pyproject


def test_the_wheel_is_tagged_for_the_oldest_python() -> None:
    oldest = nox_pythons()[0].replace(".", "")
    assert f'"py_limited_api": "cp{oldest}"' in (ROOT / "setup.py").read_text()


def test_the_binding_is_built_on_the_limited_api() -> None:
    # Without it the cp310-abi3 tag would be a lie.
    assert anyposixmq._binding.__file__.endswith(".abi3.so")


def test_ci_selects_every_tested_python() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    (selected,) = re.findall(r"^export PYENV_VERSION=(\S+)$", ci, re.MULTILINE)
    minors = sorted(v.rpartition(".")[0] for v in selected.split(":"))
    assert minors == sorted(nox_pythons())


def test_the_cross_build_driver_calls_every_shim_function() -> None:
    header = (ROOT / "anyposixmq" / "_shim.h").read_text()
    declared = set(re.findall(r"^[a-z_ ]+\**\s*\**(apmq_\w+)\(", header, re.MULTILINE))
    assert "apmq_open" in declared
    driver = (ROOT / "crossbuild" / "driver.c").read_text()
    called = set(re.findall(r"\b(apmq_\w+)\(", driver))
    assert declared <= called, f"crossbuild/driver.c never calls {sorted(declared - called)}"


def test_the_installed_package_carries_the_mit_license() -> None:
    # The suite runs on the installed package (a wheel built from the
    # checkout): its metadata names the license and the file travels with it.
    dist = importlib.metadata.distribution("anyposixmq")
    assert dist.metadata["License-Expression"] == "MIT"
    assert dist.metadata.get_all("License-File") == ["LICENSE"]
    (shipped,) = [f for f in dist.files or () if f.name == "LICENSE"]
    text = shipped.read_text()
    assert text == (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()

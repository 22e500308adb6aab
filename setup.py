"""The CFFI extension cannot be declared in pyproject.toml; everything else lives there.

cffi compiles the binding against Python's limited API (an ``.abi3.so``), so
the wheel is tagged ``cp310-abi3``: one wheel for every CPython from 3.10 on.
"""

from setuptools import setup

setup(
    cffi_modules=["anyposixmq/_ffi.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)

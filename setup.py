"""The CFFI extension cannot be declared in pyproject.toml; everything else lives there."""

from setuptools import setup

setup(cffi_modules=["anyposixmq/_ffi.py:ffibuilder"])

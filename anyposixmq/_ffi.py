"""The cffi build script of the binding (API mode, compiled at install).

``setup.py`` names ``ffibuilder`` in ``cffi_modules``; the result is the
extension module ``anyposixmq._binding``.  The C lives in real files beside
this one: ``_shim.h`` (the interface) and ``_shim.c`` (the shim over
``mq_open(3)`` and friends, where every platform difference is settled in the
preprocessor).  What Python sees of ``_shim.h`` is its part between the two
``cdef:`` marker comments, each ``#define NAME value`` made ``#define NAME
...`` (cffi takes the value from the compiler), and ``APMQ_THREAD_LOCAL``
dropped (cffi reads such a variable in the calling thread).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
_START = "/* cdef: what Python sees starts here"
_END = "/* cdef: what Python sees ends here. */"


def cdef_of(header: str) -> str:
    """The declarations of *header* between the markers, as cffi's ``cdef`` takes them."""
    part = header[header.index(_START) : header.index(_END)]
    part = part[part.index("*/") + 2 :]
    part = part.replace("APMQ_THREAD_LOCAL ", "")
    return re.sub(r"^#define (\w+) .*$", r"#define \1 ...", part, flags=re.MULTILINE)


# The one function that C calls back in Python (mq_notify's threads).
CDEF = cdef_of((HERE / "_shim.h").read_text(encoding="utf-8")) + (
    '\nextern "Python" void apmq_notified(int key);\n'
)

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "anyposixmq._binding",
    '#include "_shim.h"',
    sources=[os.path.relpath(HERE / "_shim.c")],
    include_dirs=[str(HERE)],
    libraries=["rt"] if sys.platform.startswith(("linux", "freebsd", "netbsd", "sunos")) else [],
    extra_compile_args=["-O2"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)

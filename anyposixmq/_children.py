"""Starting this package's own helper processes (demo producers, the self-benchmark's producer)."""

from __future__ import annotations

import sys
from pathlib import Path

#: Where this package was imported from.  ``python -m`` puts the working
#: directory first on ``sys.path``: children run here, so that a source
#: checkout in the caller's working directory (without its compiled binding)
#: cannot shadow the package they were started from.
PACKAGE_HOME = Path(__file__).resolve().parent.parent


def module_command(module: str, *args: object) -> list[str]:
    """The command that runs ``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *map(str, args)]

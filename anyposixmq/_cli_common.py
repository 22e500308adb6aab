"""What every subcommand of the command line shares: exit statuses, failures,
argument types, and writing to standard output and error.

Standard output may be closed (``>&-``), full (``> /dev/full``) or a pipe
whose reader went away (``| head -1``).  A command that prints checks that
it is open before it acts; a write that fails is one line on stderr and
status 1 (a reader that went away: status 1 and no line), never a traceback,
and never a second complaint from Python flushing stdout at exit.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys

PROG = "anyposixmq"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Failure(Exception):
    """An operation failed for a reason the user can act on: one line, exit 1."""


class OutputFailed(Exception):
    """Writing to standard output failed; the cause is the :class:`OSError`."""

    def __init__(self, cause: OSError, consequence: str = "") -> None:
        text = f"cannot write to standard output: {cause.strerror or cause}"
        super().__init__(text + (f"; {consequence}" if consequence else ""))
        self.quiet = isinstance(cause, BrokenPipeError)


# -- argument types ---------------------------------------------------------


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, not {text!r}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode such as 0600: {text!r}") from None
    if not 0 <= value <= 0o7777:
        raise argparse.ArgumentTypeError(f"not a permission mode between 0 and 7777: {text!r}")
    return value


# -- standard streams -------------------------------------------------------


def out(line: str = "") -> None:
    """Print one line on standard output."""
    try:
        sys.stdout.write(line + "\n")
    except OSError as exc:
        raise OutputFailed(exc) from None


def error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None and str(exc.filename) not in text:
            text = f"{exc.filename}: {text}"
        return text
    return str(exc)


def print_error(exc: BaseException) -> None:
    """One line on stderr (nothing when stderr is closed)."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(f"{PROG}: {error_text(exc)}\n")
        sys.stderr.flush()
    except OSError:
        pass


def closed_standard_streams() -> set[int]:
    """Which of descriptors 0, 1 and 2 are closed; each gets ``/dev/null`` instead.

    Otherwise the next descriptor opened (a queue's) would take the number,
    and a write meant for stdout would go to it.
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:  # pragma: no cover - the lowest free number is fd
            os.dup2(null, fd)
            os.close(null)
    return closed


def silence_stdout() -> None:
    """Point descriptor 1 at ``/dev/null``, so that Python's flush at exit
    neither fails again nor prints "Exception ignored"."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass

"""Queue names: normalisation and the checks made before any system call."""

from __future__ import annotations

#: The longest name, in bytes, not counting the leading slash (``NAME_MAX``).
NAME_MAX = 255

QueueName = str | bytes


def encode_name(name: QueueName) -> bytes:
    """Return *name* as the bytes ``mq_open(3)`` takes, with its leading slash.

    ``"jobs"`` and ``"/jobs"`` both mean ``/jobs``.  A ``str`` is encoded as
    :func:`os.fsencode` does on Linux: UTF-8, with surrogate escapes
    (``"\\udce9"``) standing for bytes that are not UTF-8.

    Raises :class:`TypeError` for a name that is neither ``str`` nor
    ``bytes`` and :class:`ValueError` naming the rule a bad name breaks.
    """
    if isinstance(name, str):
        try:
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"queue name {name!r} cannot be encoded: it holds a lone surrogate "
                f"outside U+DC80..U+DCFF, which stands for no byte ({exc.reason})"
            ) from None
    elif isinstance(name, bytes):
        raw = name
    else:
        raise TypeError(f"queue name must be str or bytes, not {type(name).__name__}")
    if not raw:
        raise ValueError("queue name must not be empty")
    if b"\0" in raw:
        raise ValueError(f"queue name {name!r} must not contain a NUL character")
    if not raw.startswith(b"/"):
        raw = b"/" + raw
    rest = raw[1:]
    if not rest:
        raise ValueError('queue name must not be "/" alone: give a name after the slash')
    if b"/" in rest:
        raise ValueError(f"queue name {name!r} must not contain a slash after the leading one")
    if rest in (b".", b".."):
        raise ValueError(f'queue name {name!r} must not be "/." or "/.."')
    if len(rest) > NAME_MAX:
        raise ValueError(
            f"queue name is {len(rest)} bytes long after the slash; "
            f"the limit is NAME_MAX = {NAME_MAX} bytes"
        )
    return raw


def display_name(raw: bytes) -> str:
    """The str form of an encoded name, for messages and the ``name`` property.

    UTF-8, with bytes that are not carried as surrogate escapes (as
    :func:`os.fsdecode` does on Linux), so that :func:`encode_name` gives
    back the same bytes: every name the library reports can be given back.
    """
    return raw.decode("utf-8", "surrogateescape")

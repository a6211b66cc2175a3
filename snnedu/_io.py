"""All-or-nothing file writes, shared by checkpoints, the frame cache and the AEDAT/label writers, and
the one-line description of an ``OSError`` that the command line prints."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO, Callable, Optional

from ._checks import flags


def atomic_write(path, write: Callable[[BinaryIO], object], *, durable: bool = True,
                 tmp: Optional[Path] = None) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it onto ``path``.

    Readers see the old file or the whole new one, never a half-written file; a write that fails
    removes its temporary and leaves ``path`` as it was. ``durable=True`` fsyncs before the rename
    (survives a power cut); ``tmp`` names the temporary (default ``.NAME.tmp<pid>`` beside ``path``).
    An ``OSError`` that names no file (a full disk: ``write`` and ``fsync`` say only "No space left
    on device") is raised again naming ``path``."""
    path = Path(path)
    tmp = Path(tmp) if tmp is not None else path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


@flags("durable")
def atomic_write_bytes(path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``: readers see either the
    old file or the whole new one, never a half-written file. ``durable=False`` skips the ``fsync``
    (still all-or-nothing, but a power cut may lose the file): for data that can be regenerated."""
    atomic_write(path, lambda f: f.write(data), durable=durable)


def describe_os_error(e: OSError) -> str:
    """One line for an ``OSError``: the path it concerns and the cause in words, e.g.
    ``runs/x/checkpoint.pt: no space left on device`` or ``rec/u1.aedat: is a directory``.

    Args:
        e: the error (``filename`` and ``strerror`` are used when set).
    """
    if e.strerror:
        cause = e.strerror[:1].lower() + e.strerror[1:]
    else:
        cause = " ".join(str(e).split()) or type(e).__name__
    if e.errno is None and "requested and" in cause:  # numpy's tofile on a full disk: "N requested and M written"
        cause = f"a short write ({cause}): is the disk full?"
    return cause if e.filename is None else f"{e.filename}: {cause}"

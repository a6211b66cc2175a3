"""All-or-nothing file writes, shared by checkpoints, the frame cache and the AEDAT/label writers."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, Optional


def atomic_write(path, write: Callable[[BinaryIO], object], *, durable: bool = True,
                 tmp: Optional[Path] = None) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it onto ``path``.

    Readers see the old file or the whole new one, never a half-written file; a write that fails
    removes its temporary. ``durable=True`` fsyncs before the rename (survives a power cut);
    ``tmp`` names the temporary (default ``.NAME.tmp<pid>`` beside ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tmp) if tmp is not None else path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

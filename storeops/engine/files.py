"""Atomic output files: a reader sees the old file or the new one, never half of one.

Outputs are written to a temporary file in the destination folder and moved
into place with ``os.replace`` (atomic on POSIX and Windows within one file
system), so a run killed or failing mid-write leaves earlier results intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import InputError, Location, StoreopsError


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; move it into place on success."""
    target = Path(destination)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        yield Path(temp)
        # mkstemp makes the file owner-only; give it the permissions any new file would get
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _umask() -> int:
    """The process umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(destination: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(temp_path)`` and move the result to ``destination``."""
    with atomic_path(destination) as temp:
        writer(temp)


def output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder, or say clearly why it cannot be one."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError("--out must be a folder, but a file has that name",
                         Location(str(folder), 1, 1))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def display_path(path: str | os.PathLike) -> str:
    """A path as messages show it: relative to the working folder when it is under it."""
    text = os.fspath(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:
        return text
    return text if rel.startswith("..") else rel


def read_limited(path: str | os.PathLike, *, limit: int, shown: str, what: str,
                 error: type[StoreopsError]) -> bytes:
    """A file's bytes, refusing files over ``limit`` before reading them.

    Every problem is one ``error`` at ``shown``:1:1, so that readers of packs,
    models and sheets report a missing file or a folder the same way.
    """
    where = Location(shown, 1, 1)
    try:
        size = os.stat(path).st_size
        if size > limit:
            raise error(f"file is {size:,} bytes, more than the limit of {limit:,}", where)
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except IsADirectoryError:
        raise error(f"is a folder, expected {what}", where) from None
    except FileNotFoundError:
        raise error("no such file", where) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", where) from None

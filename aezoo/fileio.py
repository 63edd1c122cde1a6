"""Files: atomic, durable writes (a reader never sees a half-written file, and a written one survives
a power cut) and checksums."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aezoo.errors import AezooError

#: Temporary files :func:`atomic_path` writes beside their target: ``.NAME.RANDOM.tmp``.
TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The file is flushed to disk before the rename and the folder after it, so once this returns
    the new file survives a crash or a power cut, and until then the old one is there, whole.
    """
    path = Path(path)
    _check_folders(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:  # name the file asked for, not the temporary one beside it
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        make_public(tmp_path)
        fsync_file(tmp_path)
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _check_folders(path: Path) -> None:
    """Refuse ``path`` in one line when one of the folders it goes into is a file."""
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise AezooError(f"cannot write {path}: {folder} is a file, not a folder")
            return


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it, a new file) to disk, where the system allows."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Temporary files :func:`atomic_path` left in ``folder`` (a process killed mid-write leaves
    them; only a process that holds the folder, such as a run's lock, may remove them)."""
    return sorted(p for p in Path(folder).glob(f".*{TEMP_SUFFIX}") if p.is_file() and not p.is_symlink())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def make_public(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """Give a temporary file (or folder) the permissions a normally created one would have."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if directory else 0o666) & ~mask)


def sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

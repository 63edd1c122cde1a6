"""Building an export beside its destination and moving it into place in one step, so a failed
export leaves nothing half-written behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aezoo.errors import AezooError
from aezoo.fileio import make_public
from aezoo.onnx.runtime import MANIFEST_FILE


@contextlib.contextmanager
def staged(out: Path, *, force: bool = False) -> Iterator[Path]:
    """A fresh folder beside ``out`` to build the export in; it replaces ``out`` when the block
    ends normally (an earlier export there only with ``force``) and is removed when it raises."""
    check_destination(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
        check_destination(out, force=force)  # again: another process may have written there since
        move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_destination(out: Path, *, force: bool = False) -> None:
    """Refuse to write over anything aezoo did not write: a file, a folder that is not an export,
    an export holding files of yours; and an earlier export unless ``force``."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink():
        raise AezooError(f"{out} is a symbolic link; give the folder it points to as --out")
    if not out.is_dir():
        raise AezooError(f"{out} exists and is not a folder; choose another --out")
    if not any(out.iterdir()):
        return
    if not (out / MANIFEST_FILE).is_file():
        raise AezooError(f"{out} exists and is not an aezoo export; choose another --out")
    ours = export_files(out)
    theirs = sorted(p.name for p in out.iterdir() if p.name not in ours or p.is_symlink() or not p.is_file())
    if theirs:
        raise AezooError(
            f"{out} is an aezoo export holding files it did not write ({', '.join(theirs[:3])}"
            f"{', ...' if len(theirs) > 3 else ''}); move them away or choose another --out"
        )
    if not force:
        raise AezooError(
            f"{out} holds an earlier export; pass --force (force=True) to replace it, or choose another --out"
        )


def export_files(folder: Path) -> set[str]:
    """The names an export's manifest says are its own (itself and the files it lists); only the
    manifest when it cannot be read."""
    import json

    names = {MANIFEST_FILE}
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        names |= {str(entry["file"]) for entry in manifest["models"].values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return names


def move_into_place(staging: Path, out: Path) -> None:
    make_public(staging, directory=True)  # mkdtemp made it private
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

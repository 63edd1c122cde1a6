"""The manifest's contract: its ``format`` checked first (a newer one says "upgrade aezoo"), then
the JSON Schema in ``manifest.schema.json``, at export and on every load."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from aezoo.errors import AezooError

FORMAT_NAME = "aezoo-export"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")


@functools.cache
def schema() -> dict[str, Any]:
    """The manifest's JSON Schema (draft 2020-12)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def check_manifest(manifest: Any, where: str) -> None:
    """Raise one clear :class:`AezooError` unless ``manifest`` is a manifest this aezoo reads."""
    import jsonschema

    if not isinstance(manifest, dict):
        raise AezooError(
            f"{where} is not an aezoo export manifest (a JSON {type(manifest).__name__}); export again"
        )
    found = re.fullmatch(rf"{FORMAT_NAME}/(\d+)", str(manifest.get("format", "")))
    if found is None:
        raise AezooError(
            f"{where} is not an aezoo export manifest (format {manifest.get('format')!r}); export again"
        )
    if int(found.group(1)) > FORMAT_VERSION:
        raise AezooError(
            f"{where} is format {manifest['format']}, newer than this aezoo reads ({FORMAT}): upgrade aezoo"
        )
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise AezooError(
            f"{where} does not follow the manifest schema at {at}: {error.message[:200]}; export again"
        )


def part_path(root: Path, name: str) -> Path:
    """The file ``name`` a manifest lists, inside ``root``: the schema keeps names plain (no folder,
    no ``..``), and a symbolic link leading out of the folder is refused here."""
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise AezooError(f"{root}: the manifest names a file outside the export ({name!r}); export again")
    path = root / name
    if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
        raise AezooError(f"{path} is a symbolic link leading out of the export folder; export again")
    return path

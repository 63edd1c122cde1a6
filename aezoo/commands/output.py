"""What commands print, and what they share: tables, values, and the help for a model argument."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The help of every argument that names a trained model.
MODEL_HELP = "run folder, .safetensors file, or pretrained name such as vae:mnist (`aezoo pretrained`)"


def show(value: Any) -> str:
    """A setting's value as the command line writes it."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> None:
    """Print ``rows`` under ``header`` in aligned columns."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(indent + line)
        if i == 0:
            print(indent + "  ".join("-" * w for w in widths))


def open_model(spec: str, device: str = "cpu") -> Any:
    """The trained model a command reads: a run folder, a weights file or a pretrained name."""
    from aezoo.sources import open_source

    return open_source(spec, device)


__all__ = ["MODEL_HELP", "open_model", "show", "table"]

"""The run folder: ``config.json``, ``model.safetensors``, ``metrics.jsonl`` and pictures."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from aezoo.errors import AezooError
from aezoo.fileio import write_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def new_run_dir(architecture: str, out: str | os.PathLike[str] | None = None) -> Path:
    """``out`` if given (must be empty or absent), else ``runs/<architecture>-<timestamp>``."""
    if out is not None:
        from aezoo.runlock import LOCK_FILE

        path = Path(out).expanduser()
        if path.exists() and (not path.is_dir() or any(p.name != LOCK_FILE for p in path.iterdir())):
            raise AezooError(
                f"{path} already exists and is not empty; choose another --out or resume it "
                f"with --resume {path}"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{architecture}-{stamp}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


class Run:
    """A training run's folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """An existing run folder, with a clear error when it is not one."""
        run = cls(path)
        if run.path.is_file():
            raise AezooError(f"{run.path} is a file, not a run folder; give the folder that holds it")
        if not run.path.is_dir():
            raise AezooError(f"{run.path} is not a run folder (no such directory)")
        if not (run.path / CONFIG_FILE).exists():
            raise AezooError(f"{run.path} is not a run folder: it has no {CONFIG_FILE}")
        return run

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model_path(self) -> Path:
        from aezoo.checkpoint import MODEL_FILE

        return self.path / MODEL_FILE

    @property
    def config(self) -> dict[str, Any]:
        """``config.json``, checked to hold what every run's config holds."""
        path = self.path / CONFIG_FILE
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise AezooError(f"{path} is unreadable ({exc}); restore it, or train a new run") from exc
        problem = _config_problem(config)
        if problem:
            raise AezooError(f"{path} is not a run's config ({problem}); restore it, or train a new run")
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.path / CONFIG_FILE, config)

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to ``metrics.jsonl`` (whole lines, flushed)."""
        line = json.dumps(record, sort_keys=False)
        with open(self.path / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def metrics(self, split: str | None = None) -> list[dict[str, Any]]:
        """Records of ``metrics.jsonl`` (optionally of one split: train, val or test)."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash; the rest are whole
        return [r for r in records if split is None or r.get("split") == split]

    def load_model(self, device: str = "cpu"):
        from aezoo.checkpoint import load

        return load(self.path, device=device)


#: What ``aezoo train`` writes into every run's config, and the JSON type of each.
CONFIG_KEYS: dict[str, type] = {"architecture": str, "hparams": dict, "dataset": str, "trainer": dict}


def _config_problem(config: Any) -> str | None:
    if not isinstance(config, dict):
        return f"a JSON {type(config).__name__}, not an object"
    for key, kind in CONFIG_KEYS.items():
        if key not in config:
            return f"no {key!r}"
        if not isinstance(config[key], kind):
            return f"{key!r} is not a JSON {'string' if kind is str else 'object'}"
    return None

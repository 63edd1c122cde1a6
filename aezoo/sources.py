"""Where a trained model comes from: a run folder, a ``.safetensors`` file or a pretrained name.

Commands that read a trained model take any of the three. Each gives the model, the recipe it was
trained from (for its dataset and seed), and where outputs go by default: into a run's folder, and
into the current folder for a file or a pretrained name (never into an installed package).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from aezoo.errors import AezooError
from aezoo.registry import Pretrained, is_pretrained_name
from aezoo.runs import CONFIG_FILE, Run


@dataclasses.dataclass
class ModelSource:
    """A trained model and what is known of how it was trained."""

    spec: str
    model: Any
    weights: Path
    recipe: dict[str, Any]
    run: Run | None = None
    pretrained: Pretrained | None = None

    @property
    def label(self) -> str:
        """A name for outputs: the run's, the pretrained name with ``-`` for ``:``, or the file's stem
        (its dots made ``-``: outputs are named ``LABEL-samples`` and given their suffix after, which
        would cut ``vae.v2-samples`` to ``vae.png``)."""
        if self.run is not None:
            return self.run.name
        if self.pretrained is not None:
            return self.pretrained.name.replace(":", "-")
        return self.weights.stem.replace(".", "-")

    @property
    def dataset(self) -> str:
        """The dataset it was trained on (the architecture's default when nothing says)."""
        dataset = self.recipe.get("dataset")
        if dataset and not isinstance(dataset, str):
            raise self._damaged(f"its dataset is {dataset!r}, not a name")
        if dataset:
            return dataset
        from aezoo.plugins import registry

        return registry().architecture(self.model.architecture).default_dataset

    @property
    def seed(self) -> int:
        trainer = self.recipe.get("trainer") or {}
        if not isinstance(trainer, dict):
            raise self._damaged(f"its trainer settings are {trainer!r}, not a table")
        seed = trainer.get("seed", self.recipe.get("seed", 0)) or 0
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise self._damaged(f"its seed is {seed!r}, not a whole number")
        return seed

    def _damaged(self, problem: str) -> AezooError:
        """The recipe a file or run recorded is untrusted input: a malformed one is one line."""
        where = self.run.path / CONFIG_FILE if self.run is not None else self.weights
        return AezooError(f"{where}: the recipe it records is damaged ({problem}); restore it or train again")

    def output(self, stem: str, out: str | Path | None = None) -> Path:
        """``out`` when given; else ``RUN/stem`` for a run and ``./LABEL-stem`` otherwise."""
        if out:
            return Path(out)
        if self.run is not None:
            return self.run.path / stem
        return Path(f"{self.label}-{stem}")


def open_source(spec: str, device: str = "cpu") -> ModelSource:
    """The model named by ``spec`` (run folder, ``.safetensors`` file or ``ARCH:TAG``) on ``device``."""
    from aezoo import checkpoint
    from aezoo.trainer import select_device

    where = select_device(device)
    path = Path(spec).expanduser()
    if not path.exists() and is_pretrained_name(spec):
        from aezoo import pretrained

        item = pretrained.entry(spec)
        weights = pretrained.weights_path(item)
        model = checkpoint.load(weights, device=where)
        return ModelSource(spec, model, weights, _file_recipe(weights), pretrained=item)
    if path.is_dir():
        run = Run.open(path)
        config = run.config
        return ModelSource(spec, checkpoint.load(run.path, device=where), run.model_path, config, run=run)
    if path.is_file():
        if path.name == CONFIG_FILE:
            raise AezooError(f"{path} is a run's config; give the run folder ({path.parent})")
        weights = checkpoint.resolve_model_path(path)
        model = checkpoint.load(weights, device=where)
        return ModelSource(spec, model, weights, _file_recipe(weights))
    if ":" in spec and not path.parent.exists():
        from aezoo import pretrained

        pretrained.entry(spec)  # a misspelt pretrained name: say what is close
    raise AezooError(
        f"{spec} does not exist; give a run folder, a .safetensors file or a pretrained name "
        "(`aezoo pretrained` lists them)"
    )


def refuse_pretrained(spec: str, why: str) -> None:
    """Commands that need a run's history (``train --resume``, ``plot curves``) say so in one line
    when given a pretrained name or a bare weights file."""
    path = Path(spec).expanduser()
    if not path.exists() and is_pretrained_name(spec):
        raise AezooError(
            f"{spec} is a pretrained model, not a run folder: {why}; `aezoo info {spec}` prints its card "
            "and recipe"
        )
    if path.is_file() and path.suffix == ".safetensors":
        raise AezooError(f"{spec} is a weights file, not a run folder: {why}; give the run folder")


def _file_recipe(weights: Path) -> dict[str, Any]:
    from aezoo import checkpoint

    return checkpoint.recipe_of(checkpoint.read_metadata(weights)) or {}

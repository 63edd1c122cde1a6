"""Pretrained models by name (``vae:mnist``): lookup, weights (shipped or downloaded once) and cards.

Plugins register :class:`aezoo.Pretrained` entries through ``aezoo_register_pretrained``; the
built-ins ship theirs inside their packages. An entry whose weights live at a URL is downloaded
once into the user cache, its SHA-256 checked before the file is kept; later loads are offline.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aezoo.errors import AezooError, did_you_mean
from aezoo.fileio import atomic_path, sha256
from aezoo.registry import Pretrained

#: Largest download accepted for one entry's weights.
MAX_DOWNLOAD_BYTES = 4 << 30
DOWNLOAD_TIMEOUT_S = 60
#: The only URLs weights are downloaded from, redirects included (the sha256 guards the bytes).
WEIGHT_URL_SCHEMES = ("https://", "http://")
CACHE_ENV = "AEZOO_PRETRAINED_CACHE"


def entries() -> dict[str, Pretrained]:
    """Every registered pretrained entry by name."""
    from aezoo.plugins import registry

    return dict(sorted(registry().pretrained.items()))


def entry(name: str) -> Pretrained:
    """The entry called ``name``; a misspelt name gets "did you mean", and a name whose
    architecture is not installed says so."""
    from aezoo.plugins import registry

    reg = registry()
    found = reg.pretrained.get(name)
    if found is not None:
        return found
    if f"pretrained model:{name}" in reg.conflicts:
        raise AezooError(reg.conflicts[f"pretrained model:{name}"])
    architecture, _, tag = name.partition(":")
    if architecture in reg.renamed and f"{reg.renamed[architecture]}:{tag}" in reg.pretrained:
        return entry(f"{reg.architecture(architecture).name}:{tag}")  # warns about the old name
    if architecture not in reg.architectures:
        hint = did_you_mean(architecture, reg.architectures)
        raise AezooError(
            f"no pretrained model {name!r}: no architecture {architecture!r} is installed"
            + (
                f" ({hint})"
                if hint
                else "; install the plugin that provides it (`aezoo plugins` lists those here)"
            )
        )
    hint = did_you_mean(name, reg.pretrained) or "`aezoo pretrained` lists them all"
    raise AezooError(f"no pretrained model {name!r}; {hint}")


def weights_path(item: Pretrained, *, progress: bool | None = None) -> Path:
    """The entry's weights on this machine: its own file, or the cached download (made now if
    missing). The file's SHA-256 is checked against the entry's when it declares one."""
    if item.architecture not in _architectures():
        raise AezooError(
            f"{item.name} needs the {item.architecture!r} architecture, which is not installed"
            + (f": pip install {item.distribution}" if item.distribution else "")
        )
    if not item.is_remote:
        path = Path(item.weights)
        if not path.is_file():
            raise AezooError(
                f"{item.name}: its weights {path} are missing; reinstall {item.distribution or 'its plugin'}"
            )
        if item.sha256 and sha256(path) != item.sha256:
            raise AezooError(
                f"{item.name}: {path} does not match its sha256; reinstall {item.distribution or 'its plugin'}"
            )
        return path
    cached = cache_dir() / f"{item.sha256}.safetensors"
    if cached.is_file():
        if sha256(cached) == item.sha256:
            return cached
        cached.unlink()  # damaged since it was checked: fetch it again
    download(str(item.weights), cached, item.sha256 or "", label=item.name, progress=progress)
    return cached


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``$AEZOO_PRETRAINED_CACHE``, else the user cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("aezoo")) / "pretrained"


def download(
    url: str, target: Path, expected_sha256: str, *, label: str, progress: bool | None = None
) -> None:
    """Fetch ``url`` into ``target`` with a progress bar; the file is kept only if its SHA-256 is
    ``expected_sha256``."""
    from aezoo.data import downloads_allowed

    if not url.lower().startswith(WEIGHT_URL_SCHEMES):
        raise AezooError(f"{label}: weights URL {url!r} is not http(s)")
    if not downloads_allowed():
        raise AezooError(
            f"{label} is not downloaded yet and AEZOO_OFFLINE is set; go online once, or unset it"
        )
    from tqdm.auto import tqdm

    try:
        with contextlib.ExitStack() as stack:
            opener = urllib.request.build_opener(_HttpRedirectsOnly(label))
            response = stack.enter_context(opener.open(url, timeout=DOWNLOAD_TIMEOUT_S))
            size = int(response.headers.get("Content-Length") or 0)
            if size > MAX_DOWNLOAD_BYTES:
                raise AezooError(
                    f"{label}: {url} is {size:,} bytes, more than aezoo downloads ({MAX_DOWNLOAD_BYTES:,})"
                )
            tmp = stack.enter_context(atomic_path(target))
            bar = stack.enter_context(
                tqdm(
                    total=size or None,
                    unit="B",
                    unit_scale=True,
                    desc=f"downloading {label}",
                    disable=progress is False,
                    leave=False,
                )
            )
            import hashlib

            digest, received = hashlib.sha256(), 0
            with open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise AezooError(
                            f"{label}: {url} sends more than {MAX_DOWNLOAD_BYTES:,} bytes; not kept"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != expected_sha256:
                raise AezooError(
                    f"{label}: the file downloaded from {url} has sha256 {digest.hexdigest()[:16]}…, not the "
                    f"{expected_sha256[:16]}… its entry declares; it was not kept (the server's file changed, "
                    "or the download was damaged)"
                )
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split()) or type(exc).__name__
        raise AezooError(
            f"{label}: could not download {url} ({reason}); check the connection and try again"
        ) from None


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follow a server's redirect only to another http(s) URL (urllib alone would follow ftp://)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if not newurl.lower().startswith(WEIGHT_URL_SCHEMES):
            raise AezooError(
                f"{self.label}: {req.full_url} redirects to {newurl!r}, which is not http(s); not followed"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def card(item: Pretrained) -> dict[str, Any]:
    """The entry's model card (TOML), checked to hold what every card holds."""
    path = Path(item.card)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AezooError(
            f"{item.name}: its card {path} is missing; reinstall {item.distribution or 'its plugin'}"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AezooError(f"{item.name}: its card {path} is unreadable ({exc})") from None
    for key in ("summary", "dataset", "training", "metrics"):
        if key not in data:
            raise AezooError(f"{item.name}: its card {path} has no {key!r}")
    return data


def headline(card_data: dict[str, Any]) -> str:
    """The card's headline metric as ``name value unit``."""
    metrics = card_data.get("metrics", {})
    name = metrics.get("headline")
    value = metrics.get("full", {}).get(name, {})
    if not name or "value" not in value:
        return ""
    unit = f" {value['unit']}" if value.get("unit") else ""
    return f"{value.get('label', name)} {value['value']:.4g}{unit}"


def describe(item: Pretrained) -> str:
    """The card as text, for ``aezoo info NAME``."""
    data = card(item)
    lines = [f"{item.name}: {data['summary']}", f"plugin: {item.plugin}"]
    size = Path(item.weights).stat().st_size if not item.is_remote and Path(item.weights).exists() else None
    lines.append(
        f"weights: {item.weights}"
        + (f" ({size / 1e6:.2f} MB" if size else "")
        + (f", {data['storage']})" if size and data.get("storage") else (")" if size else ""))
    )
    if data.get("parameters"):
        lines.append(f"parameters: {data['parameters']:,}")
    dataset = data["dataset"]
    lines += ["", f"dataset: {dataset.get('name', '?')} — {dataset.get('description', '')}".rstrip(" —")]
    for key in ("source", "licence", "attribution"):
        if dataset.get(key):
            lines.append(f"  {key}: {dataset[key]}")
    training = data["training"]
    lines += ["", "training:"]
    for key in ("command", "epochs", "steps", "best_step", "wall_time", "machine", "threads", "date"):
        if key in training:
            lines.append(f"  {key}: {training[key]}")
    if item.recipe:
        lines.append(f"  recipe: {item.recipe}")
    lines += ["", "test metrics (full test set):"]
    for name, value in data["metrics"].get("full", {}).items():
        unit = f" {value['unit']}" if value.get("unit") else ""
        lines.append(
            f"  {value.get('label', name)}: {value['value']:.6g}{unit}    ({value.get('command', '')})"
        )
    for check in checks(data):
        lines += ["", f"checked by the test suite on {check.get('examples_text', 'a fixed subset')}:"]
        for name, value in check.get("metrics", {}).items():
            lines.append(f"  {name}: {value:.6g} (within {check.get('rtol', 0):g} relative)")
    if data.get("notes"):
        lines += ["", str(data["notes"]).strip()]
    return "\n".join(lines)


def _architectures() -> dict[str, Any]:
    from aezoo.plugins import registry

    return registry().architectures


# -- cards held to their weights ---------------------------------------------------------------------


def checks(card_data: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's ``[[check]]`` tables: the figures the test suite measures again on fixed examples."""
    found = card_data.get("check", [])
    return [found] if isinstance(found, dict) else list(found)


def measure(
    item: Pretrained, check: dict[str, Any], *, data_dir: str | os.PathLike[str] | None = None
) -> dict[str, float]:
    """The metrics of ``check`` (its dataset or the recipe's, its split, its first ``limit``
    examples, its noise seed) on the entry's stored weights, as the card records them.

    A ``{data}`` in the check's dataset stands for the data root (``--data-dir``/``$AEZOO_DATA``).
    """
    from aezoo import checkpoint, evaluation
    from aezoo.plugins import load_data

    weights = weights_path(item)
    model = checkpoint.load(weights)
    recipe = checkpoint.recipe_of(checkpoint.read_metadata(weights)) or {}
    data = load_data(str(check.get("dataset") or recipe.get("dataset") or ""), data_dir=data_dir)
    limit = check.get("limit")
    if limit:
        data = data.limited(limit, limit)
    split = data.split(check.get("split", "test"))
    seed = int(check.get("seed", 2))
    metrics = evaluation.evaluate_split(model, split, seed=seed)
    if check.get("nll_samples"):
        metrics["nll"] = evaluation.log_likelihood(model, split, int(check["nll_samples"]))["nll"]
    return {name: metrics[name] for name in check.get("metrics", metrics) if name in metrics}

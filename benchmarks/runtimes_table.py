"""The BENCHMARKS.md table of benchmarks/runtimes.py: one row per part, one column per runtime."""

from __future__ import annotations

from typing import Any

SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"


def _mark(n: int) -> str:
    return "".join(SUPERSCRIPTS[int(d)] for d in str(n))


def _diff(value: float | None) -> str:
    if value is None:
        return ""
    return "0" if value == 0 else f"{value:.1e}".replace("e-0", "e-")


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"


def cell(row: dict[str, Any], notes: dict[str, int]) -> str:
    """Agreement and latency: ``2.4e-7 · 0.12 ms``; tokens first where the part gives them; a
    failure marked with a footnote holding the runtime's own line."""

    def note(text: str) -> str:
        number = notes.setdefault(text, len(notes) + 1)
        return _mark(number)

    if row["error"]:
        return f"✗{note(row['error'])}"
    if row["runtime"] == "PyTorch eager":
        return _ms(row["median_ms"])
    bits = []
    if row.get("token_agreement") is not None:
        bits.append(f"tokens {row['token_agreement']:.0%}")
    if row.get("max_abs_diff") is not None:
        bits.append(_diff(row["max_abs_diff"]))
    text = ", ".join(bits)
    if "median_ms" in row:
        text += f" · {_ms(row['median_ms'])}"
    for case in row["cases"]:
        if case.get("error"):
            text += f"; {case['case']} ✗{note(case['error'])}"
        elif not case["passed"]:
            text += f" ❌{note(_outside(case))}"
        else:
            ties = [o["note"] for o in case["outputs"].values() if o.get("note")]
            if ties:
                text += note(case["case"] + ": " + "; ".join(dict.fromkeys(ties)))
    return text


def _outside(case: dict[str, Any]) -> str:
    parts = []
    for name, output in case["outputs"].items():
        if not output["passed"]:
            what = f"{output['agreement']:.1%} of tokens agree" if "agreement" in output else ""
            parts.append(f"{name}: max abs diff {output['max_abs_diff']:.2g} {what}".strip())
            if output.get("note"):
                parts[-1] += f" ({output['note']})"
    return f"{case['case']}: outside 1e-4: " + "; ".join(parts)


def table(rows: list[dict[str, Any]], runtimes: tuple[str, ...]) -> str:
    """Markdown: entry, part, PyTorch eager's latency, then each runtime; footnotes below."""
    columns = ["PyTorch eager", *(("onnx.reference" if r == "reference" else r) for r in runtimes)]
    keyed: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        keyed.setdefault((row["model"], row["part"], row["variant"]), {})[row["runtime"]] = row
    notes: dict[str, int] = {}
    lines = [
        "| entry | part | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for (model, part, variant), found in keyed.items():
        name = f"{part}, {variant}" if variant else part
        cells = [cell(found[c], notes) if c in found else "" for c in columns]
        lines.append(f"| `{model}` | {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{_mark(n)} {text}  " for text, n in notes.items()]
    return "\n".join(lines)

"""What retraining reports: retrain.csv (every candidate in the folder), report.md (this fidelity), the proxy audit.

Both files are rebuilt from the candidates' metrics.json files, atomically, after every candidate; nothing is
written before the first candidate has a result. A metrics.json that cannot be read is named, not skipped
silently.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.atomic import atomic_write_text
from nas.objectives import INTERFERENCE_METRICS, Objective
from nas.retrain.plan import METRICS_NAME, Plan

if TYPE_CHECKING:
    from nas.analysis.stats import Correlation

RETRAIN_COLUMNS: tuple[str, ...] = (
    "kind", "source", "status", "reason", "arch", "arch_hash", "params", "macs", "latency_ms", "test_accuracy",
    *INTERFERENCE_METRICS, "proxy_fidelity", "proxy_accuracy", *(f"proxy_{m}" for m in INTERFERENCE_METRICS),
    "fidelity", "epochs", "seed", "dataset", "train_s", "wall_s",
)
_KIND_ORDER = {"trial": 0, "arch": 1, "baseline": 2}


@dataclass
class Summary:
    """This fidelity's rows and audit, and the metrics.json files that could not be read."""

    rows: list[dict[str, Any]]
    audit: list[Correlation]
    unreadable: list[str]


def read_rows(out_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every candidate's metrics.json in ``out_dir`` (trials, strings, baselines) and the unreadable ones."""
    rows, unreadable = [], []
    for path in sorted(out_dir.glob(f"*/{METRICS_NAME}")):
        try:
            row = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0][:120]
            unreadable.append(f"{path} ({why})")
            continue
        if isinstance(row, dict) and "arch_hash" in row and "params" in row:
            rows.append(row)
        else:
            unreadable.append(f"{path} (not a retraining record)")

    def key(r: dict[str, Any]) -> tuple[int, int, str]:
        src = str(r.get("source", ""))
        return _KIND_ORDER.get(str(r.get("kind")), 3), int(src) if src.isdigit() else 0, src

    return sorted(rows, key=key), unreadable


def write_csv(out_dir: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """retrain.csv (atomic), one row per candidate."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(RETRAIN_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in RETRAIN_COLUMNS})
    path = out_dir / "retrain.csv"
    atomic_write_text(path, buf.getvalue())
    return path


def num(value: Any, fmt: str) -> str:
    """A number formatted, or '–' for anything else (missing, text)."""
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def row_label(r: dict[str, Any]) -> str:
    if r.get("kind") == "trial":
        return f"trial {r.get('source')}"
    if r.get("kind") == "baseline":
        return f"{r.get('source')} (baseline)"
    return "architecture"


def interference_note(interference: Sequence[str], objectives: Sequence[Objective]) -> str:
    """Why no interference metric is shown or audited ('' when one is): the run optimised none."""
    if interference or not objectives:
        return ""
    return (f"the run optimised no interference metric (objectives: {', '.join(o.name for o in objectives)}), "
            "so the audit covers accuracy only; every interference metric is still measured, in retrain.csv")


def write_report(plan: Plan, summary: Summary) -> Path:
    """report.md: settings, the results table, the proxy audit (atomic)."""
    from nas.retrain.audit import audit_markdown
    from nas.space import format_count

    inter, data = plan.interference, plan.data
    head = ["network", "status", "test acc", *inter, "params", "MACs", "latency ms", "proxy acc",
            *(f"proxy {m}" for m in inter), "epochs", "hash"]
    lines = [
        f"# Retraining: {plan.title}",
        "",
        f"- data: {data.name} ({len(data.train_y):,} train / {len(data.test_y):,} test images, "
        f"{data.in_channels}×{data.resolution}×{data.resolution}, {data.num_classes} classes)",
        f"- fidelity: {plan.fidelity.describe()}; seed {plan.seed}",
        "- test accuracy is measured on the test split (used nowhere else); interference on the fixed, "
        "class-balanced probe set from the validation split; latency is the median CPU time at batch 1",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in summary.rows:
        cells = [
            row_label(r), str(r.get("status")), num(r.get("test_accuracy"), ".4f"),
            *(num(r.get(m), ".4f") for m in inter), num(r.get("params"), ","), format_count(r.get("macs") or 0),
            num(r.get("latency_ms"), ".2f"), num(r.get("proxy_accuracy"), ".4f"),
            *(num(r.get(f"proxy_{m}"), ".4f") for m in inter), num(r.get("epochs"), "d"), str(r["arch_hash"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Architectures:", ""]
    lines += [f"- {row_label(r)} (`{r['arch_hash']}`): `{r.get('arch')}`" for r in summary.rows]
    failed = [r for r in summary.rows if r.get("status") != "complete"]
    if failed:
        lines += ["", "Failed:", ""] + [f"- {row_label(r)}: {r.get('reason')}" for r in failed]
    if summary.unreadable:
        lines += ["", "Unreadable (left out):", ""] + [f"- {u}" for u in summary.unreadable]
    note = interference_note(inter, plan.objectives)
    lines += [
        "",
        "## Proxy audit",
        "",
        "Rank correlation, over the retrained networks that come from the search, between what the search "
        "measured (proxy) and what full training gives, next to parameter count and MACs as trivial predictors. "
        "For interference, a positive correlation means the proxy ranks networks like full training does.",
        *(["", f"Note: {note}."] if note else []),
        "",
        audit_markdown(summary.audit),
    ]
    path = plan.out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def summarize(plan: Plan) -> Summary:
    """Rewrite retrain.csv (every candidate) and report.md (this fidelity) once a candidate has a result."""
    from nas.retrain.audit import proxy_audit

    everything, unreadable = read_rows(plan.out_dir) if plan.out_dir.is_dir() else ([], [])
    current = plan.fidelity.to_dict()
    rows = [r for r in everything if r.get("fidelity_config") == current]
    summary = Summary(rows, proxy_audit([r for r in rows if r.get("status") == "complete"], plan.interference),
                      unreadable)
    if everything:  # nothing to report yet: write nothing (no header-only csv, no empty report)
        write_csv(plan.out_dir, everything)
        write_report(plan, summary)
    return summary

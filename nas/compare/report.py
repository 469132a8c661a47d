"""The report of a comparison: compare.csv (a row per architecture), summary.json, report.md, two plots, and the
export (safetensors + arch.json) of each group's best network under ``report/export/<group>/``."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from nas.atomic import atomic_write_json, atomic_write_text
from nas.compare.analysis import CI_LEVEL, COMPARABLE_MACS, ArchRow, Comparison, analyse, arch_rows
from nas.compare.members import GROUPS, planned_trials
from nas.fidelity import Fidelity
from nas.run import RunConfig, RunStore

COLOURS = {"winner": "tab:red", "random": "tab:grey", "baseline": "tab:blue", "arch": "tab:green"}


def write_compare_report(store: RunStore, out: Path, *, plots: bool = True) -> Comparison:
    """Analyse the run store's records, write every report file into ``out``, and return the analysis."""
    import pandas as pd

    config = store.read_config()
    records = store.records()
    result = analyse(config, records)
    recorded = len(records)
    long = _long_rows(config, records)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([r.to_dict() for r in result.rows])
    atomic_write_text(out / "compare.csv", frame.to_csv(index=False))
    exported = _export_best(store, config, result, out / "export")
    planned = planned_trials(config)
    summary = {"run": config.name, "recorded": recorded, "planned": planned, "fidelity": config.fidelity.name,
               "long_fidelity": _long_name(config),
               "members": len((config.design or {}).get("members", [])), "trained": len(result.rows),
               **result.to_dict(), "long": [r.to_dict() for r in long], "exported": exported,
               "device": _devices(records)}
    atomic_write_json(out / "summary.json", summary)
    if result.rows and plots:
        _plot(result.rows, "macs", "MACs (millions)", 1e-6, out / "accuracy_vs_macs.png")
        _plot(result.rows, "latency_ms", "batch-1 latency (ms)", 1.0, out / "accuracy_vs_latency.png")
    progress = "" if recorded >= planned else (
        f"**In progress**: {recorded} of {planned} trials recorded; "
        f"`nas compare --resume --run {_relative(store.root)}` continues it, and every number below may still change.")
    atomic_write_text(out / "report.md", markdown(config, result, long, exported, summary["device"], progress))
    return result


def summary_lines(name: str, result: Comparison) -> list[str]:
    """A few lines for the terminal: each group's best and the verdicts."""
    lines = [f"{name}: comparison of {len(result.rows)} trained architecture(s); test accuracy of each group's best "
             "(chosen by validation):"]
    for group, est in result.best.items():
        lines.append(f"  {group:<9} {_pct(est.value)} % [{_pct(est.lo)}, {_pct(est.hi)}]  {est.label}")
    for d in result.differences:
        lines.append(f"  best {d.group} − best {d.other} ({d.scope}): {_pct(d.estimate.value, True)} points "
                     f"[{_pct(d.estimate.lo, True)}, {_pct(d.estimate.hi, True)}]: {d.verdict}")
    return lines


def _relative(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it (as a user would type it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _long_name(config: RunConfig) -> str | None:
    long = (config.design or {}).get("long")
    return None if not long else Fidelity.from_dict(long).name


def _long_rows(config: RunConfig, records: list[Any]) -> list[ArchRow]:
    name = _long_name(config)
    return [] if name is None else arch_rows(config, records, name)


def _devices(records: list[Any]) -> str:
    threads = sorted({int(r.value("threads")) for r in records if isinstance(r.value("threads"), int)})
    return f"CPU, {'/'.join(map(str, threads))} torch thread(s) per trial" if threads else "not recorded"


def _export_best(store: RunStore, config: RunConfig, result: Comparison, folder: Path) -> dict[str, str]:
    """Copy the export of each group's best architecture (its best seed by validation) into ``folder/<group>``."""
    out = {}
    for group, est in result.best.items():
        candidates = [r for r in store.records() if r.complete and r.extra.get("member") == est.member
                      and r.fidelity == config.fidelity.name]
        if not candidates:
            continue
        chosen = max(candidates, key=lambda r: (r.accuracy or 0.0, -(r.seed or 0)))
        source = store.trial_dir(chosen.trial_id) / "export"
        if not source.is_dir():
            continue
        target = folder / group
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        out[group] = f"export/{group} (trial {chosen.trial_id}, seed {chosen.seed})"
    return out


def _plot(rows: list[ArchRow], attr: str, label: str, scale: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for group in GROUPS:
        mine = [r for r in rows if r.group == group]
        if not mine:
            continue
        xs = [getattr(r, attr) * scale for r in mine]
        ys = [r.test_mean for r in mine]
        errs = [0.0 if math.isnan(r.sd(r.test)) else r.sd(r.test) for r in mine]
        ax.errorbar(xs, ys, yerr=errs, fmt="o", color=COLOURS[group], label=group, capsize=3)
        for x, y, r in zip(xs, ys, mine, strict=True):
            ax.annotate(r.label.replace("default-", ""), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6,
                        color=COLOURS[group])
    ax.set_xlabel(label)
    ax.set_ylabel("test accuracy (mean ± SD over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x * 100:+.2f}" if signed else f"{x * 100:.2f}"


def _chosen(group: str, src: dict[str, Any]) -> str:
    """How a member was chosen, in words."""
    if group == "winner":
        return f"front of {src.get('run')}, trial {src.get('trial')}"
    if group == "random":
        return f"drawn from {src.get('space')} (seed {src.get('draw_seed')})"
    if group == "baseline":
        return f"adapted: {src.get('adapted')}; width multiplier {src.get('width_multiplier')}"
    return f"given: {src.get('given')}"


def markdown(config: RunConfig, result: Comparison, long: list[ArchRow], exported: dict[str, str],
             device: str, progress: str = "") -> str:
    """report.md: the verdicts first, then the groups, every architecture, the long recipe and the adaptations."""
    design = config.design or {}
    members = design.get("members", [])
    lines = [f"# Comparison {config.name}", ""] + ([progress, ""] if progress else [])
    lines += [f"Main recipe: {config.fidelity.describe()}; seeds {', '.join(map(str, design.get('seeds', [])))}; "
              f"measured once on the test split. Device: {device}. Accuracies in %; intervals are "
              f"{CI_LEVEL:.0%} bootstrap intervals (seeds resampled; for a median, architectures too). \"Best\" is "
              f"chosen by mean validation accuracy, never by test accuracy.", ""]
    lines += [f"{len(result.rows)} of {len(members)} architectures have a result at the main recipe.", ""]
    lines += ["## Verdict", "",
              f"Seed noise: pooled SD of test accuracy {_pct(result.seed_sd)} points; two architectures' means over "
              f"{result.n_seeds} seed(s) must differ by {_pct(result.resolvable)} points to be told apart.", "",
              "| difference (test accuracy) | scope | value | interval | verdict | note |", "|---|---|---|---|---|---|"]
    for d in result.differences:
        lines.append(f"| best {d.group} − best {d.other} | {d.scope} | {_pct(d.estimate.value, True)} | "
                     f"[{_pct(d.estimate.lo, True)}, {_pct(d.estimate.hi, True)}] | {d.verdict} | {d.note} |")
    if not result.differences:
        lines.append("| (needs winners and a baseline or random group) | | | | | |")
    lines += ["", f"\"Comparable MACs\": the best winner among those with at most {COMPARABLE_MACS:g}× the MACs of the "
              "other group's best, against that network.", ""]
    lines += ["## Groups", "", "| group | members | best (test) | interval | best network | median (test) | interval |",
              "|---|---|---|---|---|---|---|"]
    for g, est in result.best.items():
        med = result.median[g]
        n = sum(r.group == g for r in result.rows)
        lines.append(f"| {g} | {n} | {_pct(est.value)} | [{_pct(est.lo)}, {_pct(est.hi)}] | {est.label} | "
                     f"{_pct(med.value)} | [{_pct(med.lo)}, {_pct(med.hi)}] |")
    rk = result.ranking
    lines += ["", "## How well the searches ranked these networks", ""]
    if rk.get("tau") is None:
        lines.append(rk.get("note", "no winners"))
    else:
        lines.append(f"Kendall τ between the searches' own accuracy of the {rk['n']} winners and their mean "
                     f"validation accuracy at the main recipe: {rk['tau']:.2f} [{rk['lo']:.2f}, {rk['hi']:.2f}].")
    lines += ["", "## Architectures (main recipe, mean ± SD over seeds)", "",
              "| group | network | seeds | val | test | params | MACs | latency ms | search acc |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(result.rows, key=lambda r: (GROUPS.index(r.group), -r.val_mean)):
        lines.append(f"| {r.group} | {r.label} | {len(r.val)}{f' ({r.failed} failed)' if r.failed else ''} | "
                     f"{_pct(r.val_mean)} ± {_pct(r.sd(r.val))} | {_pct(r.test_mean)} ± {_pct(r.sd(r.test))} | "
                     f"{r.params:,} | {r.macs / 1e6:.1f}M | {r.latency_ms:.2f} | {_pct(r.search_accuracy)} |")
    lines += ["", "Plots: accuracy_vs_macs.png, accuracy_vs_latency.png.", ""]
    lines += ["## Long recipe", ""]
    if _long_name(config) is None:
        lines.append("No long recipe in this comparison.")
    elif not long:
        lines.append(f"{_long_name(config)}: not trained yet (it follows the main recipe's last trial).")
    else:
        lines += [f"The best of each group by validation at the main recipe, trained once at {_long_name(config)}.",
                  "", "| group | network | val | test | wall (min) |", "|---|---|---|---|---|"]
        for r in long:
            lines.append(f"| {r.group} | {r.label} | {_pct(r.val_mean)} | {_pct(r.test_mean)} | {r.wall_s / 60:.1f} |")
    lines += ["", "## Members and how they were chosen", ""]
    for m in members:
        how = _chosen(m["group"], m.get("source", {}))
        lines.append(f"- **{m['label']}** ({m['group']}, {m['params']:,} params): {how}  \n  `{m['arch']}`")
    for b in design.get("infeasible_baselines", []):
        lines.append(f"- baseline {b['name']}: infeasible at this budget ({b['reason']})")
    for note in design.get("notes", []):
        lines.append(f"- note: {note}")
    if exported:
        lines += ["", "## Exports", ""] + [f"- {g}: {where}" for g, where in exported.items()]
    return "\n".join(lines) + "\n"

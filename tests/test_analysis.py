"""`nas analyze`: fronts, ranks and hypervolume on hand-built trial tables, checked against independent code."""

from __future__ import annotations

import csv
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from nas.analysis import analyze_runs, load_run
from nas.analysis.features import arch_features
from nas.analysis.pareto import hypervolume
from nas.analysis.stats import bootstrap_median_ci, ecdf, spearman
from nas.errors import ConfigError, RunStoreError
from nas.objectives import Objective, resolve_objectives
from nas.run import TRIAL_COLUMNS
from nas.space.architecture import Architecture
from nas.testing import make_run as make_store

# ---- helpers: hand-built runs and independent reference implementations ---------------------------------------


def arch_string(i: int, block: str = "inverted", act: str = "relu") -> str:
    """A valid architecture string, distinct (and with a distinct hash) for every i."""
    return f"stem_c16_k3_s1/{block}_d1_s1_c{16 + 8 * i}_e4_k3_{act}_dw_bn/{block}_d2_s2_c32_e4_k3_{act}_dw_bn"


def make_run(
    path: Path, rows: list[dict[str, object]], *, objectives: tuple[str, ...] = ("accuracy", "polysemanticity"),
    sampler: str = "tpe",
) -> Path:
    """A run folder of hand-built trial rows, written through RunStore (nas.testing.make_run)."""
    out = []
    for i, row in enumerate(rows):
        full: dict[str, object] = dict(trial_id=i, status="complete", reused=False, fidelity="quick",
                                       params=100_000 + i, macs=10**6)
        if "arch" not in row:
            full["arch"] = arch_string(i, str(row.get("block", "inverted")), str(row.get("act", "relu")))
        full.update({k: v for k, v in row.items() if k in TRIAL_COLUMNS})
        full["arch_hash"] = row.get("arch_hash") or Architecture.parse(str(full["arch"])).semantic_hash
        out.append(full)
    return make_store(path, len(out), rows=out, objectives=objectives, sampler=sampler).root


def write_synthetic_run(path: Path, n_trials: int, seed: int, **kw: object) -> Path:
    return make_store(path, n_trials, seed, **kw).root  # type: ignore[arg-type]


def run(paths: list[Path] | Path, **kw: object):
    kw.setdefault("objectives", None)
    kw.setdefault("fidelity", None)
    kw.setdefault("fmt", "table")
    kw.setdefault("out_dir", None)
    kw.setdefault("console", None)
    kw.setdefault("plots", False)  # PNGs cost ~0.3 s each; the tests that look at them ask for them
    return analyze_runs(paths if isinstance(paths, list) else [paths], **kw)  # type: ignore[arg-type]


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def naive_ranks(loss: np.ndarray) -> np.ndarray:
    """Successive non-dominated fronts by brute force, O(n^2) per front."""
    ranks = np.zeros(len(loss), dtype=int)
    remaining = set(range(len(loss)))
    rank = 1
    while remaining:
        front = {i for i in remaining if not any(dominates(loss[j], loss[i]) for j in remaining if j != i)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def hv2d(points: np.ndarray, ref: tuple[float, float]) -> float:
    """2-D hypervolume by sorting on the first coordinate and sweeping."""
    pts = sorted((float(x), float(y)) for x, y in points if x < ref[0] and y < ref[1])
    volume, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return volume


def analysed_from_csv(path: Path, objectives: tuple[str, ...] = ("accuracy", "polysemanticity")) -> list[dict]:
    """Rows that count, read with the csv module: complete, finite objectives, first of each hash."""
    seen: set[str] = set()
    out = []
    with open(path / "trials.csv", newline="") as fh:
        for row in sorted(csv.DictReader(fh), key=lambda r: int(r["trial_id"])):
            if row["status"] != "complete":
                continue
            try:
                vals = [float(row[o]) for o in objectives]
            except ValueError:
                continue
            if not all(math.isfinite(v) for v in vals) or row["arch_hash"] in seen:
                continue
            seen.add(row["arch_hash"])
            out.append(row)
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# ---- fronts, ranks and hypervolume known in advance ------------------------------------------------------------

# (accuracy, polysemanticity): A, B, C on the front; F ties with B (same values, another network): front too;
# D is dominated by A and B (rank 2); E by D (rank 3). In loss space (error, poly) with reference (1, 1):
# HV = (1-.1)(1-.5) + (1-.2)(.5-.3) + (1-.3)(.3-.2) = .45 + .16 + .07 = .68.
KNOWN = [(0.9, 0.5), (0.8, 0.3), (0.7, 0.2), (0.8, 0.5), (0.6, 0.6), (0.8, 0.3)]
KNOWN_RANKS = [1, 1, 1, 2, 3, 1]


def test_known_fronts_ranks_ties_and_hypervolume(tmp_path: Path) -> None:
    path = make_run(tmp_path / "known", [{"accuracy": a, "polysemanticity": p} for a, p in KNOWN])
    summary = run(path, plots=True)
    (a,) = summary.runs[0].analyses
    assert dict(zip(a.table["trial_id"], a.table["rank"], strict=True)) == dict(enumerate(KNOWN_RANKS))
    assert a.front_sizes == [4, 1, 1]
    assert a.hypervolume == pytest.approx(0.68, abs=1e-12)
    assert a.reference.loss == (1.0, 1.0)
    # history: A alone .45; +B .61; +C .68; D, E, F add nothing
    assert np.allclose(a.history, [0.45, 0.61, 0.68, 0.68, 0.68, 0.68])

    report = path / "report"
    pareto = pd.read_csv(report / "pareto.csv")
    assert sorted(pareto["trial_id"]) == [0, 1, 2, 5] and set(pareto["rank"]) == {1}
    assert list(pareto.columns[:6]) == ["rank", "trial_id", "arch", "arch_hash", "params", "macs"]
    for col in ("accuracy", "polysemanticity", "overlap", "outliers", "dead_fraction"):
        assert col in pareto.columns
    fronts = pd.read_csv(report / "fronts.csv")
    assert dict(zip(fronts["trial_id"], fronts["rank"], strict=True)) == dict(enumerate(KNOWN_RANKS))
    md = (report / "report.md").read_text()
    assert "Hypervolume: 0.680000" in md and "fixed: 1.0 (accuracy 0)" in md
    data = json.loads((report / "summary.json").read_text())
    assert data["fidelities"][0]["hypervolume"] == pytest.approx(0.68)
    assert data["fidelities"][0]["reference_point"]["accuracy"]["reference"] == 1.0


def test_single_trial(tmp_path: Path) -> None:
    path = make_run(tmp_path / "one", [{"accuracy": 0.8, "polysemanticity": 0.4}])
    (a,) = run(path).runs[0].analyses
    assert list(a.table["rank"]) == [1]
    assert a.hypervolume == pytest.approx(0.8 * 0.6)
    assert np.allclose(a.history, [0.48])
    assert a.correlations[0].note.startswith("skipped")
    assert a.importances is not None and "at least" in a.importances.note
    assert (path / "report" / "pareto.csv").is_file()


def test_failed_pruned_nonfinite_and_duplicates_are_excluded_and_counted(tmp_path: Path) -> None:
    rows = [
        {"accuracy": 0.80, "polysemanticity": 0.50},
        {"status": "failed", "reason": "non-finite activations", "accuracy": 0.99, "polysemanticity": 0.01},
        {"status": "pruned", "reason": "pruned after epoch 1", "accuracy": 0.99},
        {"accuracy": 0.95, "polysemanticity": float("nan")},
        {"accuracy": 0.70, "polysemanticity": 0.30},
        # reused: same network (hash) as trial 0, counted once
        {"arch": arch_string(0), "reused": "true", "accuracy": 0.80, "polysemanticity": 0.50},
        {"status": "failed", "reason": "non-finite activations"},
    ]
    path = make_run(tmp_path / "mixed", rows)
    (a,) = run(path).runs[0].analyses
    c = a.counts
    assert (c.rows, c.complete, c.failed, c.pruned, c.non_finite, c.duplicates, c.analysed) == (7, 4, 2, 1, 1, 1, 2)
    assert sorted(a.table["trial_id"]) == [0, 4]
    assert sorted(a.front["trial_id"]) == [0, 4]
    assert a.hypervolume == pytest.approx(hv2d(np.array([[0.2, 0.5], [0.3, 0.3]]), (1, 1)))
    assert ("failed", "non-finite activations", 2) in a.exclusions
    md = (path / "report" / "report.md").read_text()
    assert "| 7 | 4 | 2 | 1 | 0 | 1 | 1 | 2 |" in md


def test_two_fidelities_are_kept_apart(tmp_path: Path) -> None:
    rows = [
        {"fidelity": "quick", "accuracy": 0.70, "polysemanticity": 0.50},
        {"fidelity": "quick", "accuracy": 0.60, "polysemanticity": 0.40},
        {"fidelity": "quick", "accuracy": 0.50, "polysemanticity": 0.60},  # dominated at quick
        # standard trials dominate every quick trial; mixed together the quick front would be empty
        {"fidelity": "standard", "accuracy": 0.90, "polysemanticity": 0.20},
        {"fidelity": "standard", "accuracy": 0.85, "polysemanticity": 0.30},
    ]
    path = make_run(tmp_path / "two", rows)
    summary = run(path, plots=True)
    by_fid = {a.fidelity: a for a in summary.runs[0].analyses}
    assert set(by_fid) == {"quick", "standard"}
    assert sorted(by_fid["quick"].front["trial_id"]) == [0, 1]
    assert sorted(by_fid["standard"].front["trial_id"]) == [3]
    assert by_fid["quick"].hypervolume == pytest.approx(hv2d(np.array([[0.3, 0.5], [0.4, 0.4], [0.5, 0.6]]), (1, 1)))
    report = path / "report"
    assert sorted(pd.read_csv(report / "pareto_quick.csv")["trial_id"]) == [0, 1]
    assert sorted(pd.read_csv(report / "pareto_standard.csv")["trial_id"]) == [3]
    assert not (report / "pareto.csv").exists()
    assert (report / "pareto_quick.png").is_file() and (report / "edf_block_standard.png").is_file()
    md = (report / "report.md").read_text()
    assert "## Fidelity `quick`" in md and "## Fidelity `standard`" in md and "never mixed" in md

    only = run(path, fidelity="standard", out_dir=tmp_path / "std")
    assert [a.fidelity for a in only.runs[0].analyses] == ["standard"]
    assert sorted(pd.read_csv(tmp_path / "std" / "pareto.csv")["trial_id"]) == [3]


# ---- agreement with an independent computation from trials.csv -------------------------------------------------


def test_numbers_agree_with_independent_computation(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "syn", 240, seed=3)
    summary = run(path)
    (a,) = summary.runs[0].analyses
    rows = analysed_from_csv(path)
    ids = [int(r["trial_id"]) for r in rows]
    loss = np.array([[1.0 - float(r["accuracy"]), float(r["polysemanticity"])] for r in rows])
    assert list(a.table["trial_id"]) == ids
    expected = naive_ranks(loss)
    assert list(a.table["rank"]) == list(expected)
    fronts = pd.read_csv(path / "report" / "fronts.csv")
    assert dict(zip(fronts["trial_id"], fronts["rank"], strict=True)) == dict(zip(ids, expected, strict=True))
    assert a.hypervolume == pytest.approx(hv2d(loss, (1.0, 1.0)), rel=1e-12)
    brute = [hv2d(loss[: t + 1], (1.0, 1.0)) for t in range(len(loss))]
    assert np.allclose(a.history, brute, rtol=1e-12, atol=1e-15)
    # pareto.csv carries the trials.csv numbers unchanged
    pareto = pd.read_csv(path / "report" / "pareto.csv")
    by_id = {int(r["trial_id"]): r for r in rows}
    for rec in pareto.to_dict("records"):
        src = by_id[rec["trial_id"]]
        assert rec["arch"] == src["arch"] and rec["arch_hash"] == src["arch_hash"]
        assert rec["params"] == int(src["params"]) and rec["macs"] == int(src["macs"])
        for m in ("accuracy", "polysemanticity", "overlap", "outliers", "dead_fraction"):
            assert rec[m] == pytest.approx(float(src[m]), rel=1e-15)
    # Spearman: Pearson correlation of average ranks, computed here with pandas
    df = pd.DataFrame(
        {"acc": [float(r["accuracy"]) for r in rows], "poly": [float(r["polysemanticity"]) for r in rows]}
    )
    rho = np.corrcoef(df["poly"].rank(), df["acc"].rank())[0, 1]
    assert a.correlations[0].predictor == "all" and a.correlations[0].rho == pytest.approx(rho, abs=1e-12)
    inverted = [i for i, r in enumerate(rows) if arch_features(Architecture.parse(r["arch"]))["block"] == "inverted"]
    sub = df.iloc[inverted]
    rho_inv = np.corrcoef(sub["poly"].rank(), sub["acc"].rank())[0, 1]
    (corr,) = [k for k in a.correlations if k.predictor == "block=inverted"]
    assert corr.n == len(inverted) and corr.rho == pytest.approx(rho_inv, abs=1e-12)
    # medians per choice value
    (block_stats,) = [s for s in a.choice_stats if s.choice == "block"]
    (inv,) = [v for v in block_stats.values if v.value == "inverted"]
    assert inv.n == len(inverted)
    assert inv.medians["error"][0] == pytest.approx(np.median(1.0 - sub["acc"]))
    assert inv.medians["polysemanticity"][0] == pytest.approx(np.median(sub["poly"]))


def test_three_objectives_and_an_unbounded_reference(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "three", 120, seed=5)
    (a,) = run(path, objectives=["accuracy,interference", "params"]).runs[0].analyses
    assert [o.name for o in a.objectives] == ["accuracy", "polysemanticity", "params"]
    rows = analysed_from_csv(path, ("accuracy", "polysemanticity", "params"))
    loss = np.array([[1 - float(r["accuracy"]), float(r["polysemanticity"]), float(r["params"])] for r in rows])
    assert a.reference.loss[2] == pytest.approx(loss[:, 2].max() * 1.1)
    assert "observed" in a.reference.rules[2]
    assert list(a.table["rank"]) == list(naive_ranks(loss))
    # 3-D volume against a Monte-Carlo estimate in the box [min, ref]
    rng = np.random.default_rng(0)
    ref = np.array(a.reference.loss)
    lo = loss.min(axis=0)
    samples = lo + rng.random((200_000, 3)) * (ref - lo)
    front = loss[a.table["rank"].to_numpy() == 1]
    covered = np.zeros(len(samples), dtype=bool)
    for p in front:
        covered |= np.all(samples >= p, axis=1)
    estimate = covered.mean() * np.prod(ref - lo)
    assert a.hypervolume == pytest.approx(estimate, rel=0.02)
    assert a.hypervolume == pytest.approx(hypervolume(loss, ref))


def test_unit_helpers() -> None:
    x, f = ecdf(np.array([0.3, 0.1, np.nan, 0.2, 0.2]))
    assert list(x) == [0.1, 0.2, 0.2, 0.3] and list(f) == [0.25, 0.5, 0.75, 1.0]
    values = np.random.default_rng(1).normal(size=101)
    m, lo, hi = bootstrap_median_ci(values, seed=7)
    assert m == pytest.approx(np.median(values)) and lo < m < hi
    assert bootstrap_median_ci(values, seed=7) == (m, lo, hi)
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1]), "g").rho == pytest.approx(-1.0)
    assert spearman(np.array([1.0, 1, 1]), np.array([1.0, 2, 3]), "g").note.startswith("undefined")
    mixed = Architecture.parse(
        "stem_c16_k3_s1/basic_d2_s1_c16_k3_relu2_bn/separable_d1_s2_c32_k5_relu_ln/convnext_d3_s2_c64_e4_k5_solu_dense"
    )
    f3 = arch_features(mixed)
    assert f3 == {
        "block": "mixed",
        "activation": "mixed",
        "superlinear": "mixed",
        "expansion": "4",  # only convnext reads it
        "depthwise": "mixed",  # basic dense, separable dw, convnext dense
        "kernel": "mixed",
        "norm": "mixed",  # bn, ln, convnext always ln
        "se": "0",  # no stage has squeeze-excitation
        "depth": "6",
    }
    sep = arch_features(Architecture.parse("stem_c16_k3_s1/separable_d1_s1_c16_k3_solu_bn"))
    assert (sep["expansion"], sep["depthwise"], sep["superlinear"]) == ("n/a", "dw", "yes")
    mbconv = Architecture.parse(
        "stem_c16/inverted_d1_s1_c16_e4_k3_relu_dw_bn_se0.25/inverted_d1_s2_c24_e4_k3_relu_dw_bn"
    )
    assert (arch_features(mbconv)["se"], arch_features(mbconv)["expansion"]) == ("mixed", "4")


# ---- objectives ------------------------------------------------------------------------------------------------


def test_objective_resolution() -> None:
    cols = list(TRIAL_COLUMNS)
    cfg = [Objective("accuracy", "maximize"), Objective("overlap", "minimize")]  # the run's objectives
    assert [(o.name, o.direction) for o in resolve_objectives(None, cfg, cols)] == [
        ("accuracy", "maximize"),
        ("overlap", "minimize"),
    ]
    objs = resolve_objectives(["accuracy,interference", "train_images_per_s", "wall_s:max"], cfg, cols)
    assert [(o.name, o.direction) for o in objs] == [
        ("accuracy", "maximize"),
        ("overlap", "minimize"),
        ("train_images_per_s", "maximize"),
        ("wall_s", "maximize"),
    ]
    default = [Objective("accuracy", "maximize"), Objective("polysemanticity", "minimize")]
    assert resolve_objectives(["interference"], default, cols)[0].name == "polysemanticity"
    for bad in (["sparsity"], ["arch"], ["accuracy:up"], ["accuracy,accuracy"], [""]):
        with pytest.raises(ConfigError):
            resolve_objectives(bad, cfg, cols)


# ---- bad input: one clear message ------------------------------------------------------------------------------


def test_bad_input_raises_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="does not exist"):
        run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunStoreError, match="not a run folder"):
        run(tmp_path / "empty")
    failed = make_run(tmp_path / "failed", [{"status": "failed", "reason": "diverged"}] * 3)
    with pytest.raises(RunStoreError, match="no completed trial"):
        run(failed)
    ok = make_run(tmp_path / "ok", [{"accuracy": 0.8, "polysemanticity": 0.4}])
    with pytest.raises(ConfigError, match="did not record an objective named 'sparsity'"):
        run(ok, objectives=["accuracy", "sparsity"])
    with pytest.raises(ConfigError, match="did not record the objective 'overlap'"):
        run(ok, objectives=["accuracy", "overlap"])  # the column exists but is empty
    with pytest.raises(ConfigError, match="no trial at fidelity 'full'"):
        run(ok, fidelity="full")
    with pytest.raises(ConfigError, match="unknown output format"):
        run(ok, fmt="xml")
    (ok / "run.yaml").write_text("objectives: [unclosed\n")
    with pytest.raises(RunStoreError, match="cannot be read"):
        run(ok)
    bad_arch = make_run(tmp_path / "badarch", [{"arch": "stem_c16/warp_d1_c16_relu", "arch_hash": "x", "accuracy": 0.5,
                                                "polysemanticity": 0.5}])  # fmt: skip
    with pytest.raises(RunStoreError, match="does not parse"):
        run(bad_arch)
    assert load_run(tmp_path / "failed").name == "failed"


# ---- reports, several runs, terminal output ---------------------------------------------------------------------


def test_reports_of_several_runs_and_terminal_formats(tmp_path: Path) -> None:
    a = write_synthetic_run(tmp_path / "nsga", 80, seed=1, sampler="nsga2")
    b = write_synthetic_run(tmp_path / "rand", 80, seed=2, sampler="random")
    buf = io.StringIO()
    summary = run([a, b], console=Console(file=buf, width=200), plots=True)
    text = buf.getvalue()
    assert "report: " in text and str(a / "report" / "report.md") in text and "comparison: " in text
    for r in (a, b):
        report = r / "report"
        md = (report / "report.md").read_text()
        for png in ("pareto.png", "hypervolume.png", "edf_block.png", "edf_activation.png", "importances.png"):
            assert f"]({png})" in md
            w, h = png_size(report / png)
            assert 400 < w < 2000 and 300 < h < 1500
        for choice in ("block", "activation", "superlinear", "expansion", "depthwise", "kernel", "depth"):
            assert (report / f"edf_{choice}.png").is_file()
    compare = a / "report" / "hypervolume_compare.png"
    assert summary.comparison_md == a / "report" / "comparison.md" and compare.is_file()
    cmp_md = summary.comparison_md.read_text()
    assert "nsga2" in cmp_md and "random" in cmp_md and "](hypervolume_compare.png)" in cmp_md
    assert "(comparison.md)" in (a / "report" / "report.md").read_text()
    # the shared reference is fixed for bounded metrics, so comparison and per-run hypervolumes agree
    final = {row["run"]: row["hypervolume"] for row in summary.comparisons[0].rows}
    assert final["nsga"] == pytest.approx(summary.runs[0].analyses[0].hypervolume)

    out = io.StringIO()
    run([a], fmt="json", console=Console(file=out, width=80))
    data = json.loads(out.getvalue())
    assert data["runs"][0]["fidelities"][0]["hypervolume"] == pytest.approx(summary.runs[0].analyses[0].hypervolume)

    out = io.StringIO()
    run([a, b], fmt="csv", out_dir=tmp_path / "both", console=Console(file=out, width=80))
    front = pd.read_csv(io.StringIO(out.getvalue()))
    assert set(front["run"]) == {"nsga", "rand"} and set(front["rank"]) == {1}
    assert (tmp_path / "both" / "nsga" / "report.md").is_file() and (tmp_path / "both" / "comparison.md").is_file()
    mine = pd.read_csv(tmp_path / "both" / "nsga" / "pareto.csv")
    assert sorted(front.loc[front["run"] == "nsga", "trial_id"]) == sorted(mine["trial_id"])


def test_importances_cover_the_choices(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "imp", 200, seed=4)
    (a,) = run(path).runs[0].analyses
    imp = a.importances
    assert imp is not None and set(imp.values) == {"accuracy", "polysemanticity"}
    for values in imp.values.values():
        assert set(values) <= {
            "block",
            "activation",
            "superlinear",
            "expansion",
            "depthwise",
            "kernel",
            "norm",
            "depth",
        }
        assert sum(values.values()) == pytest.approx(1.0)
    assert imp.evaluator.startswith(("fANOVA", "PED-ANOVA"))


# ---- issue 9, bug 1: a run that optimised no interference metric ------------------------------------------------


def _section(md: str, title: str) -> str:
    start = md.index(title)
    return md[start : md.index("\n### ", start + 1)]


def test_accuracy_params_run_does_not_call_params_interference(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "ap", 90, seed=6, objectives=("accuracy", "params"))
    buf = io.StringIO()
    summary = run(path, console=Console(file=buf, width=200))
    (a,) = summary.runs[0].analyses
    assert [o.name for o in a.objectives] == ["accuracy", "params"]
    # the paper's question is asked of a recorded interference metric, never of params
    assert (a.interference, a.interference_optimised) == ("polysemanticity", False)
    rows = analysed_from_csv(path, ("accuracy", "params"))
    acc = pd.Series([float(r["accuracy"]) for r in rows])
    poly = pd.Series([float(r["polysemanticity"]) for r in rows])
    assert a.correlations[0].rho == pytest.approx(np.corrcoef(poly.rank(), acc.rank())[0, 1], abs=1e-12)
    section = _section((path / "report" / "report.md").read_text(), "### Does lower interference buy accuracy?")
    assert "between params" not in section and "against params" not in section
    assert "the run optimised no interference metric (its objectives: accuracy, params)" in section
    assert "polysemanticity is recorded, not optimised" in section
    text = buf.getvalue()
    assert "Spearman(params" not in text and "Spearman(polysemanticity, accuracy)" in text
    assert "the run optimised no interference metric" in text and "recorded, not optimised" in text
    data = json.loads((path / "report" / "summary.json").read_text())["fidelities"][0]
    assert (data["interference"], data["interference_optimised"]) == ("polysemanticity", False)
    with pytest.raises(ConfigError, match="optimised none"):
        run(path, objectives=["accuracy,interference"])

    # no interference metric recorded either: said so, nothing computed
    rows = [{"accuracy": 0.5 + i / 100} for i in range(6)]
    bare = make_run(tmp_path / "bare", rows, objectives=("accuracy", "params"))
    buf = io.StringIO()
    (b,) = run(bare, console=Console(file=buf, width=200)).runs[0].analyses
    assert b.interference is None and b.correlations == []
    section = _section((bare / "report" / "report.md").read_text(), "### Does lower interference buy accuracy?")
    assert "optimised no interference metric" in section and "Not computed" in section and "params" in section
    assert "Spearman" not in buf.getvalue() and "optimised no interference metric" in buf.getvalue()


def test_an_optimised_interference_metric_is_not_flagged(tmp_path: Path) -> None:
    path = make_run(tmp_path / "ov", [{"accuracy": 0.6 + i / 50, "overlap": 0.2 + i / 40} for i in range(5)],
                    objectives=("accuracy", "overlap"))  # fmt: skip
    (a,) = run(path, objectives=["accuracy", "params"]).runs[0].analyses  # the run's own interference metric
    assert (a.interference, a.interference_optimised) == ("overlap", True)
    assert "Not an objective" not in (path / "report" / "report.md").read_text()


# ---- issue 9/10: run.yaml is read strictly; --out must be a folder -------------------------------------------------


def test_old_style_and_off_schema_run_yaml_are_refused_naming_the_key(tmp_path: Path) -> None:
    path = make_run(tmp_path / "old", [{"accuracy": 0.8, "polysemanticity": 0.4}])
    config = yaml.safe_load((path / "run.yaml").read_text())
    old = {k: v for k, v in config.items() if k != "version"}
    old["budget"] = 1_500_000  # the old fixture's dialect
    (path / "run.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(RunStoreError, match="no 'version' key"):
        run(path)
    (path / "run.yaml").write_text(yaml.safe_dump({**config, "tolerance": 0.05}))
    with pytest.raises(RunStoreError, match="unknown key 'tolerance'"):
        run(path)
    (path / "run.yaml").write_text(yaml.safe_dump({**config, "sampler": {"name": "tpe"}}))
    with pytest.raises(RunStoreError, match="sampler should be str"):
        run(path)
    assert not (path / "report").exists()


def test_out_naming_a_file_is_a_config_error_and_writes_nothing(tmp_path: Path) -> None:
    path = make_run(tmp_path / "r", [{"accuracy": 0.8, "polysemanticity": 0.4}])
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run(path, out_dir=taken)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run(path, out_dir=taken / "report")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run([path, make_run(tmp_path / "s", [{"accuracy": 0.7, "polysemanticity": 0.3}])], out_dir=taken)
    assert taken.read_text() == "keep me"
    assert not (path / "report").exists() and not (tmp_path / "s" / "report").exists()

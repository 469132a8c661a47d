"""Study analysis on constructed studies whose effects are known: models, claims, noise, report, noise-aware fronts."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas.analysis.study import analyze_study, network_aliases
from nas.analysis.study_claims import CONTRADICTED, NOT_SUPPORTED, SUPPORTED
from nas.analysis.study_models import ALIGNED_RANKS, VALUES, type2_anova
from nas.analysis.study_noise import NOISE_COLUMN, NoiseEstimate, noise_from, noise_marks, seed_noise
from nas.analysis.study_report import write_study_report
from nas.errors import RunStoreError
from nas.testing import make_run, make_study_run
from nas.testing.study import SUPERLINEAR, cross

BOTTLENECKS = ("bottleneck", "inverted")
# The paper's claims reversed: inverted beats separable, nodepth interferes more than inverted, superlinear
# activations raise interference in bottleneck families only, and hurt LayerNorm networks more than BatchNorm ones.
FLIPPED_EFFECTS = {
    "accuracy": {"block": {"separable": -0.02, "inverted": 0.02}},
    "interference": {"block": {"inverted": -0.04, "nodepth": 0.04}},
}
FLIPPED_INTERACTION = {
    "interference": cross(BOTTLENECKS, SUPERLINEAR, 0.03),
    "accuracy": cross(("layer",), SUPERLINEAR, -0.04),
}
SMALL = {"block": ["basic", "inverted", "separable", "nodepth"], "activation": ["relu", "gelu", "relu2", "solu"],
         "norm": ["batch", "layer"]}


@pytest.fixture(scope="module")
def default_study(tmp_path_factory: pytest.TempPathFactory):
    """The paper's story as main effects only (no interaction), with infeasible cells, failures and convnext aliases."""
    store = make_study_run(tmp_path_factory.mktemp("study") / "default", seed=3, noise=0.01)
    return store, analyze_study(store)


@pytest.fixture(scope="module")
def flipped_study(tmp_path_factory: pytest.TempPathFactory):
    store = make_study_run(tmp_path_factory.mktemp("study") / "flipped", seed=4, effects=FLIPPED_EFFECTS,
                           interaction=FLIPPED_INTERACTION, noise=0.01)
    return store, analyze_study(store)


def p_of(analysis, outcome: str, term: str, method: str = VALUES, scope: str = "all cells") -> float:
    table = analysis.anova_table(outcome, method, scope)
    assert table is not None, (outcome, method, scope)
    row = table.row(term)
    assert row is not None, (outcome, term, table.note)
    return row.p


# ---- models ----------------------------------------------------------------------------------------------------


def test_type2_anova_equals_statsmodels_typ2_on_a_full_design() -> None:
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(0)
    rows = [{"a": a, "b": b, "y": 0.1 * i + 0.05 * (a == "a1") * (b == "b2") + rng.normal(0, 0.03)}
            for i, a in enumerate(["a0", "a1", "a2"]) for b in ["b0", "b1", "b2", "b3"] for _ in range(1 + (i + 1) % 3)]
    frame = pd.DataFrame(rows)  # every cell present, unbalanced replicates
    ours = type2_anova(frame, "y", ["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anova_lm(smf.ols("y ~ C(a) * C(b)", frame).fit(), typ=2)
    for term, name in (("a", "C(a)"), ("b", "C(b)"), ("a:b", "C(a):C(b)")):
        row = ours.row(term)
        assert row is not None
        assert row.df == theirs.loc[name, "df"]
        assert row.ss == pytest.approx(theirs.loc[name, "sum_sq"], rel=1e-9)
        assert row.f == pytest.approx(theirs.loc[name, "F"], rel=1e-9)
        assert row.p == pytest.approx(theirs.loc[name, "PR(>F)"], rel=1e-6)
    assert ours.df_resid == theirs.loc["Residual", "df"]


def test_empty_cells_cost_degrees_of_freedom_and_unreplicated_designs_still_fit() -> None:
    rng = np.random.default_rng(1)
    rows = [{"a": a, "b": b, "y": rng.normal()} for a in "xyz" for b in "pqrs" for _ in range(2)
            if (a, b) not in {("x", "p"), ("z", "s")}]
    table = type2_anova(pd.DataFrame(rows), "y", ["a", "b"])
    assert table.row("a:b").df == 6 - 2 and table.df_resid == 10
    single = type2_anova(pd.DataFrame(rows).drop_duplicates(["a", "b"]), "y", ["a", "b"], method=ALIGNED_RANKS)
    assert [r.term for r in single.rows] == ["a", "b"] and "error term" in single.note


def test_no_interaction_is_reported_where_none_was_planted(default_study) -> None:
    _, a = default_study
    for outcome in ("accuracy", "polysemanticity"):
        for method in (VALUES, ALIGNED_RANKS):
            assert p_of(a, outcome, "block:activation", method) > 0.05, (outcome, method)


def test_a_planted_family_by_activation_interaction_is_detected(flipped_study) -> None:
    _, a = flipped_study
    for method in (VALUES, ALIGNED_RANKS):
        assert p_of(a, "polysemanticity", "block:activation", method) < 0.01
        for scope in ("norm=batch", "norm=layer"):
            assert p_of(a, "polysemanticity", "block:activation", method, scope) < 0.01
    assert p_of(a, "accuracy", "activation:norm") < 0.01  # the LayerNorm × superlinear penalty


def test_planted_main_effects_are_detected_with_effect_sizes(default_study) -> None:
    _, a = default_study
    assert p_of(a, "accuracy", "block") < 0.01
    assert p_of(a, "polysemanticity", "block") < 0.01
    assert p_of(a, "polysemanticity", "activation") < 0.01
    row = a.anova_table("polysemanticity").row("block")
    assert 0 < row.share <= row.partial_eta2 < 1


# ---- claims ----------------------------------------------------------------------------------------------------


def test_claims_follow_the_planted_effects(default_study, flipped_study) -> None:
    _, default = default_study
    _, flipped = flipped_study
    verdicts = {c.key: c.verdict for c in default.claims}
    assert verdicts["a"] == SUPPORTED and verdicts["d"] == SUPPORTED
    assert verdicts["b"] == NOT_SUPPORTED and verdicts["c"] == NOT_SUPPORTED
    flipped_verdicts = {c.key: c.verdict for c in flipped.claims}
    assert flipped_verdicts["a"] == CONTRADICTED and flipped_verdicts["d"] == CONTRADICTED
    assert flipped_verdicts["b"] == SUPPORTED and flipped_verdicts["c"] == CONTRADICTED
    a = default.claim("a")
    assert a.estimate == pytest.approx(0.03, abs=0.008) and a.lo < a.estimate < a.hi  # separable +0.02, inverted −0.01
    assert flipped.claim("b").estimate == pytest.approx(0.03, abs=0.01)
    for claim in (*default.claims, *flipped.claims):
        assert claim.p_holm >= claim.p and claim.n > 0


def test_the_interference_accuracy_claim_reads_the_sign_of_spearman(tmp_path: Path) -> None:
    base = {"interference": {"block": {"basic": -0.06, "inverted": 0.06, "nodepth": -0.03, "separable": 0.03}}}
    same = {**base, "accuracy": {"block": {"basic": 0.04, "inverted": -0.04, "nodepth": 0.02, "separable": -0.02}}}
    opposite = {**base, "accuracy": {"block": {"basic": -0.04, "inverted": 0.04, "nodepth": -0.02, "separable": 0.02}}}
    for effects, expected in ((same, SUPPORTED), (opposite, CONTRADICTED)):
        store = make_study_run(tmp_path / expected.replace(" ", "-"), factors=SMALL, effects=effects, noise=0.005)
        claim = analyze_study(store).claim("e")
        assert claim.verdict == expected and claim.statistic_name == "ρ" and claim.n == 32


# ---- seed noise and the smallest resolvable difference ---------------------------------------------------------


def test_seed_noise_recovers_the_planted_sd(tmp_path: Path) -> None:
    from scipy.stats import t

    store = make_study_run(tmp_path / "noisy", noise=0.02, factors=SMALL, repeats=3, seed=5)
    a = analyze_study(store)
    est = a.seed_noise
    assert est is not None and est.sd == pytest.approx(0.02, rel=0.2) and est.df == 32 * 2 - 3
    assert seed_noise(store) == pytest.approx(est.sd)
    assert est.resolvable(3) == pytest.approx(t.ppf(0.975, est.df) * est.sd * np.sqrt(2 / 3))
    assert a.noise["polysemanticity"].sd == pytest.approx(0.02, rel=0.2)
    assert a.cells["accuracy_sd"].notna().sum() == 32


def test_noise_marks_name_the_best_member_a_trial_cannot_be_told_from() -> None:
    front = pd.DataFrame({"trial_id": [7, 3, 9, 4, 5], "accuracy": [0.849, 0.900, 0.850, 0.895, 0.70]})
    marks = noise_marks(front, 0.003)  # threshold 1.96 · √2 · 0.003 ≈ 0.0083
    assert marks.tolist() == [9, None, None, 3, None]
    assert noise_marks(front, NoiseEstimate(0.0001, 50, 10, "test")).isna().all()
    assert noise_marks(front, 0.05).tolist() == [3, None, 3, 3, None]


# ---- infeasible, failed, shared networks; the report --------------------------------------------------------------


def test_infeasible_failed_and_shared_cells_are_listed_not_crashing(default_study, tmp_path: Path) -> None:
    store, a = default_study
    assert sorted(a.infeasible["cell"]) == [11, 82]
    assert len(a.failed) == 3 and set(a.failed["reason"]) == {"non-finite activations in the probe (inf/NaN)"}
    convnext = a.cells[a.cells["block"] == "convnext"]
    assert (convnext.loc[convnext["norm"] == "batch", "same_as"] >= 0).all()
    assert network_aliases(store.read_config().design["cells"]) == {c: c + 1 for c in range(56, 70, 2)}
    assert a.levels.set_index(["factor", "level"]).loc[("block", "convnext"), "cells"] == 7
    assert a.anova_table("accuracy").row("block:norm").df == 5  # convnext has no BatchNorm network
    assert a.anova_table("accuracy").n == len(a.complete) == 98 * 2 - 2 * 2 - 7 * 2 - 3
    # a cell whose every trial failed, one at chance, and a study where nothing completed
    odd = make_study_run(tmp_path / "odd", factors=SMALL, failed=0,
                         failed_cells=({"block": "basic", "activation": "gelu"},),
                         at_chance=({"block": "inverted", "activation": "relu2", "norm": "batch"},))
    b = analyze_study(odd)
    gone = b.cells[(b.cells["block"] == "basic") & (b.cells["activation"] == "gelu")]
    assert (gone["complete"] == 0).all() and (gone["failed"] == 2).all()
    assert b.cells["at_chance"].sum() == 2 and b.seed_noise.excluded == 1
    nothing = write_study_report(make_study_run(tmp_path / "nothing", factors=SMALL, failed_cells=({},)),
                                 tmp_path / "nothing-report")
    assert not len(nothing.complete) and [c.verdict for c in nothing.claims] == [NOT_SUPPORTED] * 5
    assert "no trial completed" in (tmp_path / "nothing-report" / "report.md").read_text()


def test_networks_that_diverged_after_training_keep_their_accuracy_not_their_interference(tmp_path: Path) -> None:
    # Squared activations after BatchNorm train to chance and overflow: the trial fails on its interference, but
    # its accuracy is a measurement. Leaving it out would hide the harm claim (c) asks about.
    superlinear_bn = [{"activation": a, "norm": "batch"} for a in ("relu2", "solu")]
    store = make_study_run(tmp_path / "diverged", factors=SMALL, failed=0, diverged=superlinear_bn, noise=0.005)
    a = analyze_study(store)
    bad = (a.trials["activation"].isin(["relu2", "solu"])) & (a.trials["norm"] == "batch")
    assert (a.trials.loc[bad, "status"] == "failed").all() and len(a.failed) == bad.sum() == 4 * 2 * 2
    assert set(a.analysed.index) == set(a.trials.index) and a.analysed.loc[bad, "polysemanticity"].isna().all()
    cells = a.cells.set_index(["block", "activation", "norm"])
    assert cells.loc[("basic", "relu2", "batch"), ["complete", "diverged", "accuracy_n", "polysemanticity_n"]
                     ].tolist() == [0, 2, 2, 0]
    assert cells.loc[("basic", "relu2", "batch"), "accuracy_median"] == pytest.approx(0.1, abs=0.01)
    assert a.anova_table("accuracy").n == len(a.trials) and a.anova_table("polysemanticity").n == len(a.complete)
    c = a.claim("c")  # superlinear hurts BatchNorm networks by ~0.8 and LayerNorm ones not at all
    assert c.verdict == SUPPORTED and c.estimate > 0.5  # a BatchNorm drop from trained accuracy to chance
    # the same study with the diverged trials left out could not see it
    assert analyze_study(make_study_run(tmp_path / "plain", factors=SMALL, failed=0, noise=0.005)
                         ).claim("c").verdict == NOT_SUPPORTED


def test_report_files_exist_and_heatmaps_are_images(default_study, tmp_path: Path) -> None:
    from matplotlib.image import imread

    store, _ = default_study
    out = tmp_path / "report"
    a = write_study_report(store, out)
    names = {p.name for p in a.files}
    assert {"report.md", "summary.json", "cells.csv", "levels.csv", "anova.csv", "claims.csv",
            "heatmap_accuracy.png", "heatmap_polysemanticity.png", "levels.png"} <= names
    for name in ("heatmap_accuracy.png", "heatmap_polysemanticity.png", "levels.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = imread(out / name)
        assert image.shape[0] > 300 and image.shape[1] > 600 and image.std() > 0.05
    report = (out / "report.md").read_text()
    for text in ("## The paper's claims", "**supported**", "Holm", "## Factorial models", "ART", "## Seed noise",
                 "LSD", "infeasible", "another cell's network", "heatmap_accuracy.png", "expansion = 6"):
        assert text in report, text
    summary = json.loads((out / "summary.json").read_text())
    assert [c["key"] for c in summary["claims"]] == list("abcde")
    assert summary["noise"]["accuracy"]["df"] > 80 and len(summary["infeasible"]) == 2
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 98 and {"accuracy_median", "accuracy_sd", "polysemanticity_n", "same_as"} <= set(cells)
    assert set(pd.read_csv(out / "anova.csv")["method"]) == {VALUES, ALIGNED_RANKS}


def test_a_run_that_is_not_a_study_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="not a study"):
        analyze_study(make_run(tmp_path / "search", 5))


# ---- noise-aware fronts in `nas analyze` -------------------------------------------------------------------------


def _repeated_search(path: Path):
    """A search whose six networks were each evaluated under two seeds (seed SD about 0.004)."""
    from nas.space.architecture import Architecture

    rng = np.random.default_rng(0)
    rows, trial = [], 0
    for i, (acc, poly) in enumerate([(0.900, 0.70), (0.897, 0.60), (0.870, 0.55), (0.840, 0.50), (0.839, 0.45),
                                     (0.80, 0.80)]):
        arch = f"stem_c16_k3_s1/inverted_d1_s1_c{16 + 8 * i}_e4_k3_relu_dw_bn"
        for seed in (0, 1):
            rows.append({"trial_id": trial, "status": "complete", "arch": arch, "fidelity": "quick",
                         "arch_hash": Architecture.parse(arch).semantic_hash, "params": 1000, "macs": 10_000,
                         "seed": seed, "accuracy": acc + (rng.normal(0, 0.004) if seed else 0.0),
                         "polysemanticity": poly + rng.normal(0, 0.01) * seed})
            trial += 1
    return make_run(path, len(rows), rows=rows, dataset="fashion-mnist")


def test_analyze_marks_front_members_within_noise(tmp_path: Path) -> None:
    from rich.console import Console

    from nas.analysis import analyze_runs
    from nas.analysis.summary import plan_run, summarise_run
    from nas.analysis.view import load_run

    store = _repeated_search(tmp_path / "search")
    console = Console(record=True, width=200)
    summary = analyze_runs([store.root], objectives=None, fidelity=None, fmt="table", out_dir=tmp_path / "out",
                           console=console, plots=False)
    report = summary.runs[0]
    assert report.noise is not None and report.noise.groups == 6 and report.noise.df == 6
    front = report.analyses[0].front
    marks = dict(zip(front["trial_id"], front[NOISE_COLUMN], strict=True))
    assert marks[0] is None and marks[2] == 0 and marks[4] is None and marks[8] == 6  # 0.897 ≈ 0.900, 0.839 ≈ 0.840
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    assert NOISE_COLUMN in pareto.columns and pareto[NOISE_COLUMN].notna().sum() == sum(v is not None for v in
                                                                                        marks.values())
    assert "within noise of" in (tmp_path / "out" / "report.md").read_text()
    printed = console.export_text()
    assert "seed noise" in printed and "within noise of" in printed
    json.dumps(summary.to_dict())
    # noise from a study instead of the run itself
    study = make_study_run(tmp_path / "study", factors=SMALL, noise=0.03)
    run = load_run(store.root)
    given = noise_from(study.root)
    wide = summarise_run(run, plan_run(run, None, None), tmp_path / "wide", noise=given)
    assert wide.noise is given and wide.analyses[0].front[NOISE_COLUMN].notna().sum() >= 3
    with pytest.raises(RunStoreError, match="no seed noise"):
        noise_from(make_run(tmp_path / "plain", 5).root)

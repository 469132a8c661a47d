"""The audit analysis on constructed audits whose agreement with the reference is known by construction."""

from __future__ import annotations

import csv
import json
import struct
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from nas.analysis.audit import analyze_audit, paired_bootstrap, top_set
from nas.analysis.audit_choice import bf16_verdict, choose_default_proxy, fp32_twin
from nas.analysis.audit_report import write_audit_report
from nas.errors import ConfigError, RunStoreError
from nas.testing import make_audit_run, make_run
from nas.testing.audit import CHANCE, DIVERGED, REFERENCE, PlantedFidelity

FAST = 200  # bootstrap resamples in tests (the default is 2,000)
QUICK = "quick"
CHEAP = "quick+epochs=1,train_images=1280"
REF = REFERENCE.name


def analyse(tmp_path: Path, name: str = "audit", **kwargs: object):
    return analyze_audit(make_audit_run(tmp_path / name, **kwargs), n_resamples=FAST)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory):
    """The default constructed audit, with member 3 diverged at quick and member 5 at the reference."""
    return analyse(tmp_path_factory.mktemp("default"), failed=[(3, QUICK), (5, REF)])


def test_a_signal_built_to_agree_ranks_first_and_its_interval_excludes_zero(tmp_path: Path) -> None:
    fids = (REFERENCE, PlantedFidelity(QUICK, noise=0.001, wall_s=10.0), PlantedFidelity(CHEAP, noise=0.05))
    a = analyse(tmp_path, fidelities=fids, proxies={"naswot": 0.3})
    rows = sorted(a.table("accuracy"), key=lambda s: -(s.tau if s.tau is not None else -9))
    assert rows[0].signal == QUICK
    assert rows[0].tau > 0.85 and rows[0].tau_lo > 0
    assert rows[0].tau_lo <= rows[0].tau <= rows[0].tau_hi and rows[0].rho_lo <= rows[0].rho <= rows[0].rho_hi
    assert a.signal(QUICK, "polysemanticity").tau > 0.8  # its interference agrees as well
    assert choose_default_proxy(a)["chosen"] == QUICK


def test_an_anti_correlated_proxy_gets_a_negative_tau(default) -> None:
    grad_norm = default.signal("zc_grad_norm")  # planted at -0.8
    assert grad_norm.tau < 0 and grad_norm.tau_hi < 0 and grad_norm.rho < 0
    assert default.signal("zc_naswot").tau_lo > 0  # planted at +0.9
    assert grad_norm.orientation == "higher score"  # the sign is fixed in advance, never flipped to fit


def test_point_estimates_are_scipys_and_the_bootstrap_resamples_pairs(default) -> None:
    s = default.signal("zc_synflow")
    x, y = np.array([p[1] for p in s.points]), np.array([p[2] for p in s.points])
    assert s.tau == pytest.approx(kendalltau(x, y).statistic)
    assert s.rho == pytest.approx(spearmanr(x, y).statistic)
    lo_t, hi_t, lo_r, hi_r = paired_bootstrap(x, y, n_resamples=300, seed=7)
    idx = np.random.default_rng(7).integers(0, len(x), size=(300, len(x)))
    taus = [kendalltau(x[i], y[i]).statistic for i in idx]
    rhos = [spearmanr(x[i], y[i]).statistic for i in idx]
    assert (lo_t, hi_t) == pytest.approx(tuple(np.quantile(taus, [0.025, 0.975])))
    assert (lo_r, hi_r) == pytest.approx(tuple(np.quantile(rhos, [0.025, 0.975])))


def test_a_perfect_signal_has_full_top_overlap_and_recovers_the_reference_front(tmp_path: Path) -> None:
    copy = PlantedFidelity("standard+epochs=3,train_images=None", noise=0.0, twin_of=REF, wall_s=5.0)
    a = analyse(tmp_path, fidelities=(REFERENCE, copy, PlantedFidelity(CHEAP, noise=0.05)))
    for target in ("accuracy", "polysemanticity"):
        s = a.signal(copy.name, target)
        assert s.tau == pytest.approx(1.0) and s.top_overlap == 1.0 and s.top_k == 6
    assert a.signal(copy.name).pareto_recovery == 1.0
    assert a.reference_front and a.signal(CHEAP).pareto_recovery < 1.0
    assert top_set(np.array([3.0, np.nan, 5.0, 1.0]), 2) == {0, 2}


def test_costs_are_median_seconds_times_threads(tmp_path: Path) -> None:
    a = analyse(tmp_path, cpus_per_trial=4, zc_seconds={"naswot": 0.5})
    assert a.threads == 4
    assert a.signal(QUICK).cpu_s == pytest.approx(4 * 40.0, rel=0.1)
    assert a.signal("zc_naswot").cpu_s == pytest.approx(4 * 0.5, rel=0.1)
    assert a.signal("params").cpu_s == 0.0 and a.signal("macs").cpu_s == 0.0
    combo = next(s for s in a.table() if s.kind == "combination" and s.components[0] == "zc_naswot")
    assert combo.cpu_s == pytest.approx(sum(a.signal(c).cpu_s for c in combo.components))
    assert analyse(tmp_path, "nothreads", cpus_per_trial=None).threads == 2  # null means 2


def test_a_record_that_names_its_threads_is_costed_at_them(tmp_path: Path) -> None:
    store = make_audit_run(tmp_path / "mixed", cpus_per_trial=2, zc_seconds={"naswot": 0.5})
    for r in store.records():  # the reference and quick evaluations ran at 1 thread, the cheap one at the run's 2
        if r.fidelity in (REF, QUICK):
            store.write_record(r.replace(threads=1))
    a = analyze_audit(store, n_resamples=FAST)
    assert a.signal(QUICK).cpu_s == pytest.approx(40.0, rel=0.1)
    assert a.signal(CHEAP).cpu_s == pytest.approx(2 * 8.0, rel=0.1)
    assert a.signal("zc_naswot").cpu_s == pytest.approx(0.5, rel=0.1)  # the median over every evaluation's timing


def test_bf16_verdict_is_positive_for_a_faithful_twin_and_negative_for_a_shuffled_one(tmp_path: Path) -> None:
    twin = "quick+precision=bf16"
    good = (REFERENCE, PlantedFidelity(QUICK, noise=0.006), PlantedFidelity(twin, noise=0.0005, twin_of=QUICK,
                                                                           wall_s=25.0))
    a = analyse(tmp_path, "good", fidelities=good)
    assert fp32_twin(a.fidelity(twin), a.fidelities).name == QUICK
    verdict = bf16_verdict(a)
    (pair,) = verdict["pairs"]
    assert pair["tau"] >= 0.9 and pair["diff_lo"] <= 0 <= pair["diff_hi"] and pair["speedup"] > 1
    assert verdict["may_default"] is True and verdict["statement"].startswith("bf16 may be the default")
    bad = (*good[:2], PlantedFidelity(twin, noise=0.0005, twin_of=QUICK, shuffled=True))
    verdict = bf16_verdict(analyse(tmp_path, "bad", fidelities=bad))
    assert verdict["pairs"][0]["tau"] < 0.9 and verdict["may_default"] is False
    assert "NOT" in verdict["statement"]
    assert bf16_verdict(analyse(tmp_path, "none"))["may_default"] is None  # no twin, no verdict


def test_default_proxy_picks_the_planted_best_cheap_signal_and_refuses_dear_ones(default) -> None:
    choice = choose_default_proxy(default, max_cpu_s=40.0)
    assert choice["chosen"] == "zc_naswot" and choice["beats_baselines"] and choice["reaches_good_tau"]
    refused = {r["signal"]: r["reason"] for r in choice["refused"]}
    assert "above the limit of 40" in refused[QUICK]  # quick ranks well but costs ~80 CPU-s
    assert "does not exceed the params/MACs bar" in refused["zc_grad_norm"]
    assert "zc_naswot" in choice["statement"] and choice["tau_lo"] > choice["bar"]
    generous = choose_default_proxy(default, max_cpu_s=1000.0)
    assert generous["chosen"] == QUICK and QUICK in generous["eligible"]  # quick's τ beats naswot's


def test_default_proxy_says_plainly_when_nothing_beats_params_and_macs(tmp_path: Path) -> None:
    fids = (REFERENCE, PlantedFidelity(QUICK, noise=0.006, wall_s=100.0), PlantedFidelity(CHEAP, noise=0.2))
    a = analyse(tmp_path, fidelities=fids, proxies={})
    choice = choose_default_proxy(a)
    assert choice["chosen"] is None and not choice["beats_baselines"] and not choice["reaches_good_tau"]
    assert "beats params and MACs" in choice["statement"] and "reaches τ ≥ 0.6" in choice["statement"]
    assert choice["cheapest_reaching_good_tau"] == QUICK  # what would: the dear fidelity
    assert QUICK in choice["statement"].split("reaches τ ≥ 0.6")[1]


@pytest.mark.parametrize("n", [0, 1])
def test_an_audit_of_fewer_than_two_members_is_refused_clearly(tmp_path: Path, n: int) -> None:
    with pytest.raises(ConfigError, match=f"no rank correlation possible with n = {n}"):
        analyse(tmp_path, n=n)


def test_an_audit_with_one_reference_result_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no rank correlation possible with n = 1"):
        analyse(tmp_path, n=4, failed=[(i, REF) for i in range(3)])


def test_runs_that_are_not_audits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="not an audit"):
        analyze_audit(make_run(tmp_path / "search", 6))
    store = make_audit_run(tmp_path / "audit", n=4)
    config = store.read_config()
    config.design = {**config.design, "reference": "nonesuch"}  # type: ignore[dict-item]
    store.write_config(config)
    with pytest.raises(RunStoreError, match="reference fidelity 'nonesuch' is not among"):
        analyze_audit(store)


def test_failed_records_are_dropped_and_listed(default) -> None:
    quick = default.signal(QUICK)
    assert quick.n == 22  # 24 members, one diverged at quick, one at the reference
    reasons = {d.panel_index: d.reason for d in quick.dropped}
    assert set(reasons) == {3, 5} and DIVERGED in reasons[3] and REF in reasons[5]
    assert [d.panel_index for d in default.reference_dropped] == [5]
    assert default.signal("zc_naswot").n == 23 and default.reference_n["accuracy"] == 23


def test_a_network_that_diverged_after_training_is_ranked_last_for_accuracy_not_dropped(tmp_path: Path) -> None:
    a = analyse(tmp_path, n=12, diverged_after_training=[(4, REF), (4, QUICK)])
    quick = a.signal(QUICK)
    assert quick.n == 12 and a.reference_n["accuracy"] == 12  # its chance accuracy is a measurement
    assert (4, CHANCE, CHANCE) in [(i, s, r) for i, s, r in quick.points]
    inter = a.signal(QUICK, "polysemanticity")
    assert inter.n == 11 and [d.panel_index for d in inter.dropped] == [4]  # its interference is not


def test_an_accuracy_only_audit_has_no_interference_table(tmp_path: Path) -> None:
    a = analyse(tmp_path, interference=None)
    assert [t.name for t in a.targets] == ["accuracy"] and not a.table("polysemanticity")
    assert all(s.pareto_recovery is None for s in a.signals) and a.reference_front == []


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_files_exist_and_the_plots_are_real_images(tmp_path: Path) -> None:
    store = make_audit_run(tmp_path / "run", n=12, failed=[(2, QUICK)], fidelities=(REFERENCE, PlantedFidelity(QUICK)))
    a = write_audit_report(store, tmp_path / "report", n_resamples=FAST)
    out = tmp_path / "report"
    assert all(p.is_file() for p in a.files)
    report = (out / "report.md").read_text()
    for text in ("Sign convention", "## Default proxy", "## bf16 against fp32", "## Dropped members", DIVERGED,
                 "tau_vs_cost_accuracy.png"):
        assert text in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["default_proxy"]["criterion"] and summary["bf16"]["may_default"] is None
    rows = list(csv.DictReader((out / "audit.csv").open()))
    assert len(rows) == len(a.signals) and {r["target"] for r in rows} == {"accuracy", "polysemanticity"}
    assert len(list(csv.DictReader((out / "panel.csv").open()))) == 12
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"tau_vs_cost_accuracy.png", "tau_vs_cost_polysemanticity.png",
                                      "scatter_zc_naswot.png", "scatter_quick.png"}
    assert len(pngs) == len({s.signal for s in a.signals if s.points}) + 2
    assert all(min(_png_size(p)) > 200 for p in pngs)
    write_audit_report(store, tmp_path / "bare", n_resamples=FAST, plots=False)
    assert not list((tmp_path / "bare").glob("*.png"))


def test_a_report_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    store = make_audit_run(tmp_path / "run", n=4)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        write_audit_report(store, tmp_path / "file" / "report", plots=False)


def test_records_without_panel_index_are_matched_by_architecture(tmp_path: Path) -> None:
    store = make_audit_run(tmp_path / "run", n=5)
    records = store.records()
    for r in records:
        r.extra.pop("panel_index")
    records[0] = records[0].replace(arch="stem_c8_k3_s1/basic_d1_s1_c8_e1_k3_relu_dense_bn", arch_hash="x" * 16)
    store.write_records(records[1:])
    assert analyze_audit(store, n_resamples=FAST).signal(QUICK).n == 5
    store.write_records(records[:1])
    with pytest.raises(RunStoreError, match="no valid panel_index"):
        analyze_audit(store, n_resamples=FAST)


def test_a_proxy_that_overflows_on_the_worst_members_is_also_read_as_the_pre_screen_reads_it(tmp_path: Path) -> None:
    """synflow is NaN for the 6 weakest of 24 members: dropping them hides what the pre-screen uses, ranking
    them last shows it; a proxy that never overflows gets no second row."""
    a = analyse(tmp_path, proxies={"synflow": 0.2}, overflow_worst={"synflow": 6})
    plain, as_used = a.signal("zc_synflow"), a.signal("zc_synflow (non-finite last)")
    assert plain.n == 18 and len(plain.dropped) == 6
    assert all("not a finite number" in d.reason for d in plain.dropped)
    assert as_used.n == 24 and not as_used.dropped and as_used.kind == "zero-cost"
    assert as_used.tau > plain.tau + 0.2 and as_used.tau_lo > 0
    assert as_used.cpu_s == plain.cpu_s and as_used.top_overlap >= plain.top_overlap
    assert {p[1] for p in as_used.points if p[0] in {d.panel_index for d in plain.dropped}} == {0.0}
    assert not any(s.signal == "zc_naswot (non-finite last)" for s in a.signals)
    combos = [s.components for s in a.table() if s.kind == "combination"]
    assert all(len({c.removesuffix(" (non-finite last)") for c in parts}) == len(parts) for parts in combos)
    written = write_audit_report(make_audit_run(tmp_path / "again", proxies={"synflow": 0.2},
                                                overflow_worst={"synflow": 6}), tmp_path / "report",
                                 n_resamples=FAST, plots=False)
    report = (tmp_path / "report" / "report.md").read_text()
    assert written.signal("zc_synflow (non-finite last)").n == 24
    assert "| `zc_synflow (non-finite last)` | zero-cost | 24 |" in report and "(non-finite last)`: the proxy" in report


def test_the_search_defaults_are_read_against_the_audit(tmp_path: Path) -> None:
    from nas.analysis.audit_choice import search_defaults
    from nas.search.prescreen import DEFAULT_PROXY
    from nas.search.settings import DEFAULT_FIDELITY

    fids = (REFERENCE, PlantedFidelity(QUICK, noise=0.001, wall_s=10.0), PlantedFidelity(CHEAP, noise=0.05))
    good = analyse(tmp_path, "good", fidelities=fids, proxies={"naswot": 0.3, "synflow": 0.95})
    checked = search_defaults(good, choose_default_proxy(good))
    assert (checked["prescreen"], checked["fidelity"]) == (DEFAULT_PROXY, DEFAULT_FIDELITY) == ("synflow", QUICK)
    assert checked["prescreen_is_best_zero_cost"] and checked["prescreen_clears_bar"]
    assert checked["fidelity_is_default_proxy"] and "the audit's default proxy" in checked["statement"]

    poor = analyse(tmp_path, "poor", proxies={"naswot": 0.95, "synflow": -0.2}, overflow_worst={"synflow": 3})
    checked = search_defaults(poor, choose_default_proxy(poor))
    assert checked["prescreen_signal"] == "zc_synflow (non-finite last)"  # read as the pre-screen reads it
    assert checked["prescreen_is_best_zero_cost"] is False and checked["best_zero_cost"] == "zc_naswot"
    assert "not the best zero-cost reading here: zc_naswot" in checked["statement"]
    assert not checked["fidelity_is_default_proxy"]

    write_audit_report(make_audit_run(tmp_path / "r", proxies={"naswot": 0.95}), tmp_path / "report",
                       n_resamples=FAST, plots=False)
    assert "## The search's defaults against this audit" in (tmp_path / "report" / "report.md").read_text()
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["search_defaults"]["prescreen"] == "synflow"


def test_cost_chart_labels_of_one_column_keep_their_order_and_a_gap() -> None:
    from nas.analysis.audit_report import spread_labels

    points = [(1.60, 0.56), (1.64, 0.55), (1.67, 0.50), (1.57, 0.54), (1.58, 0.61), (-0.46, 0.34), (1.13, -0.29)]
    heights = spread_labels(points, x_near=0.35, gap=0.045)
    column = sorted(range(5), key=lambda i: points[i][1])
    placed = [heights[i] for i in column]
    assert all(b - a >= 0.045 - 1e-12 for a, b in pairwise(placed))
    assert abs(sum(placed) / 5 - sum(points[i][1] for i in column) / 5) < 1e-12
    assert heights[5:] == [0.34, -0.29]  # alone in their columns: left where they are

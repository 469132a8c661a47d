"""bench/search_quality.py on constructed studies, the pre-screen's pool rule, and `--prescreen` input checks."""

from __future__ import annotations

import math
import random
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from nas.cli import main
from nas.errors import ConfigError, RunStoreError
from nas.run import RunStore
from nas.search.prescreen import (
    DEFAULT_POOL,
    DEFAULT_PROXY,
    Prescreen,
    best_candidate,
    check_prescreen,
    draw_with_params,
)
from nas.testing import make_study_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # search_quality, _surrogate
import search_quality as sq

FOUR = {"block": ["basic", "separable"], "activation": ["relu", "gelu"], "norm": ["batch"]}
# basic/relu (0.85, 0.60), basic/gelu (0.86, 0.58), separable/relu (0.87, 0.64), separable/gelu (0.88, 0.62)
FOUR_EFFECTS = {"accuracy": {"block": {"separable": 0.02}, "activation": {"gelu": 0.01}},
                "interference": {"block": {"separable": 0.04}, "activation": {"gelu": -0.02}}}


def _four(tmp_path: Path) -> sq.StudyTable:
    make_study_run(tmp_path / "four", factors=FOUR, effects=FOUR_EFFECTS, noise=0.0, repeats=2, failed=0,
                   infeasible=())
    return sq.StudyTable(tmp_path / "four", ["zc_naswot"])


def _key(table: sq.StudyTable, *levels: str) -> str:
    return table.cells[(*levels, "batch")]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def study98(tmp_path_factory: pytest.TempPathFactory) -> sq.StudyTable:
    """The default 7 × 7 × 2 design with planted effects; zc_naswot is accuracy itself (an oracle proxy)."""
    root = tmp_path_factory.mktemp("s") / "study"
    store = make_study_run(root, effects=sq.CONSTRUCTED_EFFECTS, noise=0.005, repeats=2, seed=3)
    store.write_records([r.replace(zc_naswot=r.accuracy if r.accuracy is not None else float("nan"))
                         for r in store.records()])
    return sq.StudyTable(root, ["zc_naswot"])


def test_true_front_and_hypervolume_by_hand(tmp_path: Path) -> None:
    table = _four(tmp_path)
    assert not table.partial and len(table.networks) == 4
    front = {_key(table, "basic", "gelu"), _key(table, "separable", "gelu")}
    assert table.front == front and table.best == {_key(table, "separable", "gelu")}
    assert table.networks[_key(table, "basic", "relu")].truth == pytest.approx((0.85, 0.60))
    # fixed reference (error 1, interference 1): 0.88 × 0.38 + 0.86 × (0.62 − 0.58)
    assert table.hv_true_fixed == pytest.approx(0.88 * 0.38 + 0.86 * 0.04)
    assert table.found_hv(sorted(front)) == pytest.approx((1.0, 1.0))
    assert table.found_hv(list(table.networks)) == pytest.approx((1.0, 1.0))  # dominated networks add nothing
    hv, hv_fixed = table.found_hv([_key(table, "basic", "relu")])
    assert hv == 0.0 and 0 < hv_fixed < 1  # outside the front's box; inside the fixed reference
    assert table.found_hv([]) == (0.0, 0.0)
    # the front's box: worst front loss + 10 % of the inter-quartile range of the four networks' losses
    losses = np.array([table.losses[k] for k in table.networks])
    q1, q3 = np.quantile(losses, [0.25, 0.75], axis=0)
    assert table.reference == pytest.approx(np.array([0.14, 0.62]) + 0.1 * (q3 - q1))


def test_a_sampler_given_the_best_cell_finds_it_and_reuses_it(tmp_path: Path) -> None:
    import optuna

    table = _four(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fixed = optuna.samplers.PartialFixedSampler({"block": "separable", "activation": "gelu", "norm": "batch"},
                                                    optuna.samplers.RandomSampler(seed=0))
    trace = sq.replay(table, sq.Config("random"), 0, 5, proxy="zc_naswot", pool=4, sampler=fixed)
    assert trace.found == [_key(table, "separable", "gelu")] * 5 and trace.trained == [True] + [False] * 4
    c = sq.curves(table, trace, 5)
    assert list(c.best) == [1.0] * 5 and c.share[-1] == 0.5 and c.trained[-1] == 1


def test_random_search_finds_the_best_more_often_with_more_trials(study98: sq.StudyTable) -> None:
    results = sq.run_benchmark(study98, [sq.Config("random")], seeds=60, trials=40, proxy="zc_naswot", pool=8,
                               log=lambda s: None)
    best = results[sq.Config("random")]["best"].mean(axis=0)
    assert best[9] < best[19] < best[39]
    assert 0.03 < best[9] < 0.3 and best[39] > 0.25  # about 10/89 and 40/89 of the networks
    hv = results[sq.Config("random")]["hv"].mean(axis=0)
    assert np.all(np.diff(hv) >= 0)


def test_an_oracle_prescreen_beats_random(study98: sq.StudyTable) -> None:
    configs = [sq.Config("random"), sq.Config("random", prescreen=True)]
    results = sq.run_benchmark(study98, configs, seeds=30, trials=10, proxy="zc_naswot", pool=8, log=lambda s: None)
    rows = {(r["config"], r["trials"]): r for r in sq.summarise(results, [10])}
    plain, screened = rows[("random", 10)], rows[("random +ps", 10)]
    assert screened["p_best"] > plain["p_best"] + 0.3
    assert screened["ratio_lo"] > 1 and screened["hv"] > plain["hv"]
    assert plain["ratio_to_random"] == pytest.approx(1.0)


def test_partial_study_is_labelled_and_never_queries_a_cell_without_record(tmp_path: Path) -> None:
    store = make_study_run(tmp_path / "p", effects=sq.CONSTRUCTED_EFFECTS, noise=0.01, repeats=2)
    import shutil

    for r in store.records()[9:]:  # a study that has only begun
        shutil.rmtree(store.trial_dir(r.trial_id))
    table = sq.StudyTable(tmp_path / "p", ["zc_naswot"])
    assert table.partial and any("PARTIAL" in n for n in table.notes)
    trace = sq.replay(table, sq.Config("tpe"), 0, 6, proxy="zc_naswot", pool=4)
    assert all(k is None or k in table.recorded for k in trace.found) and len(trace.found) == 6


def test_benchmark_command_writes_its_table_chart_and_headline(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    make_study_run(tmp_path / "s", factors=FOUR, effects=FOUR_EFFECTS, noise=0.01, repeats=2, failed=0,
                   infeasible=())
    code = sq.main(["--study", str(tmp_path / "s"), "--seeds", "3", "--trials", "2,4", "--configs", "random,nsga2:2",
                    "--out", str(tmp_path / "out"), "--prescreen", "audit", "--audit", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert code == 0 and "ratio to random at 4 trials" in out and "zc_naswot" in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"search_quality.md", "search_quality.csv",
                                                              "search_quality.png"}
    assert sq.main(["--study", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2")]) == 2
    assert sq.main(["--study", str(tmp_path / "s"), "--configs", "cmaes", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error: ") for e in err)


def test_with_no_arguments_the_benchmark_measures_the_shipped_prescreen() -> None:
    import inspect

    source = inspect.getsource(sq.main)
    assert "default=DEFAULT_PROXY" in source and "default=DEFAULT_POOL" in source
    assert "pool_choice(" in inspect.getsource(sq._prescreen)  # the search's own rule, not a copy


def test_pool_choice_skips_taken_and_duplicate_draws_and_ranks_a_taken_proposal_last() -> None:
    from nas.search.prescreen import pool_choice

    draws = iter(["a", "b", "b", None, "c", "d"])
    value = {"p": 0.0, "b": 1.0, "c": 3.0, "d": 2.0}
    pool, scores, best = pool_choice("p", lambda c: c, {"a"}, lambda: next(draws, None), value.__getitem__, 4)
    assert pool == ["p", "b", "c", "d"] and scores == [0.0, 1.0, 3.0, 2.0] and best == 2
    pool, scores, best = pool_choice("z", lambda c: c, {"z"}, lambda: None, lambda c: 1.0, 3)
    assert pool == ["z"] and scores == [-math.inf] and best == 0


# ---- the pre-screen ----------------------------------------------------------------------------------------


def test_best_candidate_ranks_nan_last_and_keeps_the_first_of_equals() -> None:
    assert best_candidate([1.0, 3.0, 3.0]) == 1
    assert best_candidate([2.0, math.nan, 1.0]) == 0
    assert best_candidate([-math.inf, math.nan, 0.5]) == 2
    assert best_candidate([math.nan, math.nan]) == 0


def test_check_prescreen() -> None:
    assert check_prescreen(None, None) == (DEFAULT_PROXY, DEFAULT_POOL)  # on by default
    assert check_prescreen(None, 3) == (DEFAULT_PROXY, 3)
    assert check_prescreen("none", None) == (None, None) == check_prescreen(" OFF ", None)
    assert check_prescreen("zc_synflow", None) == ("synflow", DEFAULT_POOL)
    assert check_prescreen("naswot", 3) == ("naswot", 3)
    for proxy, pool, needle in [("beauty", None, "unknown zero-cost proxy 'beauty'.*or none"),
                                ("naswot", 0, "from 1 to"), ("naswot", -2, "from 1 to"), (None, 0, "from 1 to"),
                                ("none", 4, "needs a pre-screen, but --prescreen 'none' turns it off")]:
        with pytest.raises(ConfigError, match=needle):
            check_prescreen(proxy, pool)


def test_prescreen_pool_enqueues_params_that_rebuild_the_winner() -> None:
    """A pool's winner is named by Optuna params that rebuild the same network through Space.suggest."""
    import optuna

    from nas.sampling import Shape, fit
    from nas.search.settings import default_space
    from nas.space import Budget, Space

    space = Space.from_file(default_space())
    shape, budget = Shape(1, 28, 10), Budget(300_000)
    proposal = fit(space.sample(random.Random(5)), budget, shape)
    scores = {proposal.arch.semantic_hash: 0.0}

    def score(arch: object) -> float:  # a proxy that prefers anything over the proposal
        return scores.get(arch.semantic_hash, 1.0 + random.Random(arch.semantic_hash).random())  # type: ignore[attr-defined]

    screen = Prescreen(proxy="naswot", pool=5, seed=0, space=space, budget=budget, shape=shape, data=None, score=score)
    choice = screen.choose(7, proposal, taken=set())
    assert choice.replaced and len(choice.scores) == 5 and choice.scores[0] == 0.0
    again = screen.choose(7, proposal, taken=set())
    assert again.solved.arch == choice.solved.arch  # seeded per trial number
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(choice.params)
    rebuilt = fit(space.suggest(study.ask()), budget, shape)
    assert rebuilt.arch.semantic_hash == choice.solved.arch.semantic_hash
    # a proposal already trained scores last; with a pool of one it is kept all the same
    kept = Prescreen(proxy="naswot", pool=1, seed=0, space=space, budget=budget, shape=shape, data=None,
                     score=score).choose(7, proposal, taken={proposal.arch.semantic_hash})
    assert not kept.replaced and kept.solved is proposal
    arch, params = draw_with_params(space, random.Random(1))
    assert arch == space.sample(random.Random(1)) and params


@pytest.mark.parametrize("args,needle", [
    (["--prescreen", "beauty"], "unknown zero-cost proxy 'beauty'"),
    (["--prescreen", "naswot", "--prescreen-pool", "0"], "--prescreen-pool must be from 1"),
    (["--prescreen", "naswot", "--prescreen-pool", "-1"], "--prescreen-pool must be from 1"),
    (["--prescreen-pool", "0"], "--prescreen-pool must be from 1"),
    (["--prescreen", "none", "--prescreen-pool", "4"], "--prescreen-pool 4 needs a pre-screen"),
    (["--prescreen", ""], "unknown zero-cost proxy ''"),
])
def test_bad_prescreen_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code = main(["search", "--results-dir", str(tmp_path), "--run", "bad", "--dataset", "synthetic", "--budget",
                 "20k", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0] and err[0].startswith("error: ")
    assert not (tmp_path / "bad").exists()


def test_run_yaml_keeps_the_prescreen_and_refuses_a_bad_one(tmp_path: Path) -> None:
    from nas.testing import make_config

    store = RunStore(tmp_path / "r")
    store.root.mkdir()
    store.write_config(make_config("r", prescreen="naswot", prescreen_pool=6))
    config = store.read_config()
    assert (config.prescreen, config.prescreen_pool) == ("naswot", 6)
    data = yaml.safe_load(store.run_yaml.read_text())
    for change, needle in [({"prescreen": "beauty"}, "not a zero-cost proxy"), ({"prescreen_pool": 0}, "1 or more"),
                           ({"prescreen": None}, "set together"),
                           ({"prescreen_pool": "8"}, "prescreen_pool should be")]:
        store.run_yaml.write_text(yaml.safe_dump({**data, **change}))
        with pytest.raises(RunStoreError, match=needle):
            store.read_config()
    old = {k: v for k, v in data.items() if k not in ("prescreen", "prescreen_pool")}  # a run.yaml from before
    store.run_yaml.write_text(yaml.safe_dump(old))
    assert store.read_config().prescreen is None


# ---- the surrogate -----------------------------------------------------------------------------------------


def _samples(n: int, signal: float, seed: int = 0) -> list:
    """Records of ``n`` networks of the default space (two seeds each): outcomes planted by family and depth."""
    import _surrogate

    from nas.search.settings import default_space
    from nas.space import Space

    space = Space.from_file(default_space())
    rng = np.random.default_rng(seed)
    fam = {b: rng.normal() for b in ("basic", "bottleneck", "inverted", "separable", "convnext", "sandglass",
                                     "nodepth")}
    out = []
    for arch in space.sample_distinct(n, seed):
        block, depth = arch.stages[0].block, sum(st.depth for st in arch.stages)
        for _ in range(2):
            acc = 0.8 + signal * (0.02 * fam[block] + 0.01 * depth) + rng.normal(0, 0.004)
            poly = 0.6 + signal * (0.02 * fam[block] - 0.01 * depth) + rng.normal(0, 0.004)
            out.append(_surrogate.Sample(arch.to_string(), arch.semantic_hash, (acc, poly), acc + rng.normal(0, .01)))
    return out


def test_surrogate_is_validated_on_held_out_networks() -> None:
    import _surrogate

    good = _surrogate.validate(_samples(50, signal=1.0), ["accuracy", "polysemanticity"], trees=20)
    assert good.passes and good.n_networks == 50 and good.tau["accuracy"] >= 0.7  # type: ignore[operator]
    assert good.noise[0] == pytest.approx(0.004, rel=0.5)  # the pooled seed SD of the repeats
    noise = _surrogate.validate(_samples(40, signal=0.0), ["accuracy", "polysemanticity"], trees=20)
    assert not noise.passes and "below 0.7" in noise.reason
    few = _surrogate.validate(_samples(8, signal=1.0), ["accuracy", "polysemanticity"], trees=20)
    assert not few.passes and "only 8 distinct networks" in few.reason


def test_surrogate_table_replays_a_search_on_a_small_space() -> None:
    import _surrogate

    from nas.objectives import Objective
    from nas.space import Space, parse_space

    space = Space(parse_space({
        "name": "small", "stages": [{"stride": 1, "depth": [1, 2], "width": 8}, {"stride": 2, "depth": 1, "width": 16}],
        "choices": {"block": {"values": ["basic", "separable", "inverted"], "per": "network"},
                    "activation": {"values": ["relu", "gelu"], "per": "network"}},
    }))
    samples = _samples(30, signal=1.0)
    v = _surrogate.validate(samples, ["accuracy", "polysemanticity"], trees=20)
    table = _surrogate.make_surrogate_table(samples, v, [Objective("accuracy", "maximize"),
                                                         Objective("polysemanticity", "minimize")], space)
    assert len(table.networks) == space.size() and table.front and not table.partial
    trace = sq.replay(table, sq.Config("tpe", prescreen=True), 0, 6, proxy="zc_naswot", pool=3)
    assert len(trace.found) == 6 and all(k in table.networks for k in trace.found)


@pytest.mark.slow
def test_a_prescreened_search_enqueues_pool_winners_and_records_its_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    tiny = ["--set", "train_images=192", "--set", "epochs=1", "--set", "val_images=100", "--set", "probe_images=100",
            "--set", "batch_size=32"]
    code = main(["search", "--results-dir", str(tmp_path), "--run", "ps", "--dataset", "synthetic", "--budget", "20k",
                 *tiny, "--workers", "1", "--cpus-per-trial", "1", "--trials", "3", "--sampler", "tpe",
                 "--prescreen", "naswot", "--prescreen-pool", "4"])
    assert code == 0
    config = RunStore(tmp_path / "ps").read_config()
    assert (config.prescreen, config.prescreen_pool) == ("naswot", 4)
    records = RunStore(tmp_path / "ps").records()
    study = optuna.load_study(study_name="ps", storage=f"sqlite:///{tmp_path / 'ps' / 'study.db'}")
    by_number = {t.number: t for t in study.trials}
    assert len(records) == 3 and all(by_number[r.trial_id].state.name == "COMPLETE" for r in records)
    assert all("prescreen" in by_number[r.trial_id].user_attrs for r in records)
    for t in study.trials:
        if "prescreen_of" in t.user_attrs:  # a pool winner: the proposal it replaced is FAIL, not a trial of the run
            replaced = by_number[t.user_attrs["prescreen_of"]]
            assert replaced.state.name == "FAIL" and replaced.user_attrs["reason"].startswith("prescreen: replaced")
            assert replaced.number not in {r.trial_id for r in records}
    assert any("prescreen_of" in t.user_attrs for t in study.trials)  # seed 0: a drawn network won at least once
    assert not [t for t in study.trials if t.state.name == "RUNNING"]

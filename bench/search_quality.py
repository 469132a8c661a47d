"""Search quality at the trial counts users run: samplers replayed against recorded results, with seeds enough to tell.

TABULAR benchmark. The table is a `nas study` run (results/study): its design lists every cell of the factorial
(family × activation × norm by default) with the network it names, and its records hold each cell's results
at each seed. A replayed search sees the study's factors as Optuna categoricals (one point per cell) and is
driven exactly as `nas search` drives its study (ask/tell, nas.search.samplers.make_sampler):

- a cell the study marks infeasible (no width meets the budget), or one without a record yet (a partial
  study), is told FAIL and does not count as a trial, as the searcher does with infeasible proposals;
- cells naming one network (convnext reads no norm) are one network; a network already evaluated is reused
  (told its first result, no training) and counts as a trial, as in `nas search`;
- otherwise the query returns ONE recorded result of the network, drawn at random per query (so seed noise is
  real); a failed record counts as a trial and is told as `nas search` tells it: an infeasible COMPLETE trial
  with pessimistic values (nas.constraints; ``--failures fail``: FAIL, as runs before constraints);
- with a pre-screen (``+ps``) each proposal goes through the rule of nas/search/prescreen.py: a pool of the
  sampler's proposal and N − 1 cells drawn uniformly (skipping infeasible, unrecorded and evaluated
  networks), each scored by one recorded zero-cost score of the network drawn at random; the best is
  evaluated (the proposal is replaced by the winner through FAIL + ``enqueue_trial``).

Truth: each network's MEDIAN accuracy and median interference over its complete records (a network none of
whose records completed has no truth and is a failure). The true front is the non-dominated set of those
medians. A search's result is the set of networks it evaluated successfully, valued at their medians (what the
search found, not its noisy draws), so

- hypervolume (normalised) = HV(medians of the networks found) / HV(true front), both against the reference
  point at the true front's worst value in each objective plus 10 % of the table's inter-quartile range: 1
  when every true-front network was found, 0 when nothing found is within the front's box. (The fixed
  reference of `nas analyze`, accuracy 0 and interference 1, is reported beside it: there, one average
  network already holds ~95 % of the front's volume, so it barely tells searches apart.)
- P(best) = share of searches that found a network of the highest median accuracy;
- front share = share of the true front's networks found.

Each is averaged over seeds (one seed = one search: sampler seed, query noise, pool draws) with a 95 %
percentile-bootstrap interval over seeds; the ratio to random resamples both configurations' seeds.

SURROGATE (``--surrogate``): a model of the full default space fitted on every recorded trial at the study's
fidelity (bench/_surrogate.py); used only when its held-out Kendall τ against real records is ≥ 0.7 for both
objectives. The τ it reaches is printed either way.

    .venv/bin/python bench/search_quality.py --study results/study [--seeds 100] [--trials 10,20,40] [--out DIR]
    .venv/bin/python bench/search_quality.py --constructed        # a constructed study with planted effects
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nas.analysis.pareto import hypervolume, reference_point  # noqa: E402
from nas.errors import ConfigError, NASError, shown  # noqa: E402
from nas.objectives import Objective, front_ranks, loss_matrix  # noqa: E402
from nas.search.prescreen import DEFAULT_POOL, DEFAULT_PROXY, pool_choice, proxy_name  # noqa: E402

DEFAULT_CONFIGS = "random,nsga2:4,nsga2:10,tpe,gp"
DEFAULT_TRIALS = "10,20,40"
N_BOOT = 2000
HEADLINE_TRIALS = 20
FRONT_MARGIN = 0.1  # reference = the true front's worst value + 10 % of the table's inter-quartile range
DEFAULT_GP_SEEDS = 30
MAX_SKIPS = 5000  # infeasible or unrecorded proposals in a row before a replay gives up (a partial study)


# ---- configurations ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One search configuration: an Optuna sampler (with NSGA-II's population), with or without the pre-screen."""

    sampler: str
    population: int | None = None
    prescreen: bool = False
    failures: str = "infeasible"  # how a failed trial is told: infeasible (nas.constraints) or fail

    @property
    def label(self) -> str:
        base = f"nsga2 pop {self.population}" if self.sampler == "nsga2" else self.sampler
        return base + (" +ps" if self.prescreen else "") + (" fail" if self.failures == "fail" else "")


def parse_configs(text: str, *, prescreen: bool = True, failures: str = "infeasible") -> list[Config]:
    """``random,nsga2:4,tpe,gp`` → configurations; each also with the pre-screen when ``prescreen``; failed trials
    told as ``failures`` says (infeasible, fail, or both: every configuration each way)."""
    from nas.search.samplers import SAMPLERS

    out: list[Config] = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        name, _, pop = item.partition(":")
        if name not in SAMPLERS:
            raise ConfigError(f"--configs: unknown sampler {shown(name)}; choose from {', '.join(SAMPLERS)}")
        if name == "nsga2":
            if not pop.isdigit() or int(pop) < 2:
                raise ConfigError(f"--configs: nsga2 needs a population of 2 or more, e.g. nsga2:4, got {shown(item)}")
            population: int | None = int(pop)
        elif pop:
            raise ConfigError(f"--configs: only nsga2 takes a population (nsga2:4), got {shown(item)}")
        else:
            population = None
        out.append(Config(name, population))
    if not out:
        raise ConfigError("--configs names no configuration")
    if failures not in ("infeasible", "fail", "both"):
        raise ConfigError(f"--failures must be infeasible, fail or both, got {shown(failures)}")
    out += [Config(c.sampler, c.population, True) for c in out] if prescreen else []
    if failures == "both":
        return out + [Config(c.sampler, c.population, c.prescreen, "fail") for c in out]
    return [Config(c.sampler, c.population, c.prescreen, failures) for c in out]


# ---- tables ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A point a search can evaluate: its network (cells naming one network share it) and its Optuna params."""

    key: str
    params: dict[str, Any]


@dataclass
class Network:
    """One network of a table: its recorded outcomes ((accuracy, interference) or None = failed) and zc scores."""

    key: str
    label: str
    outcomes: list[tuple[float, float] | None] = field(default_factory=list)
    zc: dict[str, list[float]] = field(default_factory=dict)

    @property
    def truth(self) -> tuple[float, float] | None:
        done = [o for o in self.outcomes if o is not None]
        if not done:
            return None
        return float(np.median([o[0] for o in done])), float(np.median([o[1] for o in done]))


class Table:
    """What every benchmark table shares: its networks, their truth, the true front, its hypervolume."""

    name: str
    objectives: list[Objective]
    networks: dict[str, Network]
    notes: list[str]

    def _truth(self) -> None:
        self.true_keys = [k for k, n in self.networks.items() if n.truth is not None]
        if not self.true_keys:
            raise ConfigError(f"{self.name}: no network has a complete record yet; nothing to benchmark against")
        values = np.array([self.networks[k].truth for k in self.true_keys], dtype=float)
        self.losses = dict(zip(self.true_keys, loss_matrix(values, self.objectives), strict=True))
        all_losses = np.array([self.losses[k] for k in self.true_keys])
        ranks = front_ranks(all_losses)
        self.front = {k for k, r in zip(self.true_keys, ranks, strict=True) if r == 1}
        best = max(values[:, 0])
        self.best = {k for k in self.true_keys if self.networks[k].truth[0] == best}  # type: ignore[index]
        front = np.array([self.losses[k] for k in self.front])
        q1, q3 = np.quantile(all_losses, [0.25, 0.75], axis=0)
        self.reference = front.max(axis=0) + np.maximum(FRONT_MARGIN * (q3 - q1), 1e-3)
        self.reference_fixed = reference_point(all_losses, self.objectives).as_array()
        self.hv_true = hypervolume(front, self.reference)
        self.hv_true_fixed = hypervolume(front, self.reference_fixed)
        if not self.hv_true_fixed > 0:
            raise ConfigError(f"{self.name}: the true front has no hypervolume inside the reference point")

    def suggest(self, trial: Any) -> Candidate | None:
        raise NotImplementedError

    def draw(self, rng: random.Random) -> Candidate | None:
        raise NotImplementedError

    def query(self, key: str, rng: np.random.Generator) -> tuple[float, float] | None:
        """One recorded outcome of the network, drawn at random (None: that evaluation failed)."""
        outcomes = self.networks[key].outcomes
        return outcomes[int(rng.integers(len(outcomes)))]

    def score(self, key: str, proxy: str, rng: np.random.Generator) -> float:
        """One recorded zero-cost score of the network, drawn at random (NaN when none is finite)."""
        scores = self.networks[key].zc.get(proxy, [])
        return scores[int(rng.integers(len(scores)))] if scores else math.nan

    def found_hv(self, keys: Sequence[str]) -> tuple[float, float]:
        """Normalised hypervolume of the networks found (valued at their medians): front box, fixed reference."""
        losses = np.array([self.losses[k] for k in keys if k in self.losses])
        if not len(losses):
            return 0.0, 0.0
        return (hypervolume(losses, self.reference) / self.hv_true,
                hypervolume(losses, self.reference_fixed) / self.hv_true_fixed)


class StudyTable(Table):
    """The tabular benchmark of a `nas study` run: its factors are the search space, its cells the points."""

    def __init__(self, root: Path | str, proxies: Sequence[str]) -> None:
        from nas.run import RunStore
        from nas.space.architecture import Architecture

        store = RunStore(root)
        config = store.read_config()
        if config.kind != "study" or not isinstance(config.design, dict) or "cells" not in config.design:
            raise ConfigError(f"{store.root} is a `nas {config.kind}` run, not a study: give --study a `nas study` "
                              "run folder (results/study)")
        self.name = f"study {store.root.name}"
        self.objectives = list(config.objectives)
        self.fidelity = config.fidelity.name
        self.factors: dict[str, list[str]] = {f: [str(v) for v in vs] for f, vs in config.design["factors"].items()}
        records = [r for r in store.records() if r.fidelity == config.fidelity.name and not r.reused]
        by_cell: dict[int, list[Any]] = {}
        for r in records:
            if isinstance(r.extra.get("cell"), int):
                by_cell.setdefault(r.extra["cell"], []).append(r)
        self.cells: dict[tuple[str, ...], str | None] = {}  # levels -> network key (None: infeasible)
        self.networks = {}
        infeasible = 0
        for cell in config.design["cells"]:
            levels = tuple(str(cell["levels"][f]) for f in self.factors)
            if cell.get("infeasible") or not cell.get("arch"):
                self.cells[levels] = None
                infeasible += 1
                continue
            key = Architecture.parse(cell["arch"]).semantic_hash
            self.cells[levels] = key
            net = self.networks.setdefault(key, Network(key, "/".join(levels)))
            for r in by_cell.get(int(cell["index"]), []):
                ok = r.complete and all(r.finite(o.name) is not None for o in self.objectives)
                net.outcomes.append((r.finite(self.objectives[0].name), r.finite(self.objectives[1].name))
                                    if ok else None)
                for p in proxies:
                    value = r.finite(p)
                    if value is not None:
                        net.zc.setdefault(p, []).append(value)
        unrecorded = [k for k, n in self.networks.items() if not n.outcomes]
        self.recorded = {k for k, n in self.networks.items() if n.outcomes}
        self.n_records = sum(len(n.outcomes) for n in self.networks.values())
        feasible_cells = sum(v is not None for v in self.cells.values())
        recorded_cells = sum(v in self.recorded for v in self.cells.values())
        self.partial = bool(unrecorded)
        self.notes = [
            f"{self.name} ({store.root}), fidelity {self.fidelity}, objectives "
            f"{', '.join(f'{o.name} ({o.direction[:3]})' for o in self.objectives)}",
            f"{len(self.cells)} cells ({infeasible} infeasible), {len(self.networks)} distinct networks; "
            f"{recorded_cells} of {feasible_cells} feasible cells have a record ({self.n_records} records)",
        ]
        if self.partial:
            self.notes.append(f"PARTIAL: {len(unrecorded)} network(s) have no record yet; a search proposing one is "
                              "told FAIL and asks again (as for an infeasible cell). Numbers below describe the "
                              "recorded part only, not the study")
        self._truth()

    def _candidate(self, levels: tuple[str, ...]) -> Candidate | None:
        key = self.cells.get(levels)
        if key is None or key not in self.recorded:
            return None
        return Candidate(key, dict(zip(self.factors, levels, strict=True)))

    def suggest(self, trial: Any) -> Candidate | None:
        return self._candidate(tuple(trial.suggest_categorical(f, vs) for f, vs in self.factors.items()))

    def draw(self, rng: random.Random) -> Candidate | None:
        return self._candidate(tuple(vs[rng.randrange(len(vs))] for vs in self.factors.values()))


# ---- one replayed search -----------------------------------------------------------------------------------


@dataclass
class Trace:
    """One replayed search: per counted trial the network found (None: failed) and whether it was trained."""

    found: list[str | None]
    trained: list[bool]
    asks: int
    stopped: bool  # gave up before its trial count (too many infeasible or unrecorded proposals in a row)
    seconds: float


def replay(table: Table, config: Config, seed: int, trials: int, *, proxy: str, pool: int,
           sampler: Any = None) -> Trace:
    """Drive one search on ``table`` as `nas search` drives its study (see the module docstring).

    ``sampler`` replaces the configuration's Optuna sampler (tests give one that knows the answer).
    """
    import optuna

    from nas.constraints import Constraints
    from nas.search.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE's group, GP
    started = time.perf_counter()
    study = optuna.create_study(directions=[o.direction for o in table.objectives],
                                sampler=sampler or make_sampler(config.sampler, seed=seed,
                                                                population=config.population or 4))
    noise = np.random.default_rng([seed, 1])  # which record a query (and a pool score) returns
    seen: dict[str, list[float]] = {}  # network -> its first successful result, told again on reuse
    found: list[str | None] = []
    trained: list[bool] = []
    skips = asks = 0
    fail = optuna.trial.TrialState.FAIL
    constraints = Constraints({}, None) if config.failures == "infeasible" else None

    def tell(trial: Any, values: list[float] | None) -> None:
        """A trial's outcome as `nas search` tells it (``values`` None: the trial failed)."""
        if constraints is not None:
            constraints.tell(study, trial, table.objectives, None, values, failed=values is None)
        elif values is None:
            study.tell(trial, state=fail)
        else:
            study.tell(trial, values)

    while len(found) < trials:
        trial = study.ask()
        asks += 1
        cand = table.suggest(trial)
        if cand is None:
            study.tell(trial, state=fail)
            skips += 1
            if skips >= MAX_SKIPS:
                break
            continue
        skips = 0
        if config.prescreen and "prescreen_of" not in trial.user_attrs:
            winner = _prescreen(table, cand, set(seen), proxy, pool, random.Random(seed * 1_000_003 + trial.number),
                                noise)
            if winner is not cand:
                study.tell(trial, state=fail)
                study.enqueue_trial(winner.params, user_attrs={"prescreen_of": trial.number})
                continue
        if cand.key in seen:
            tell(trial, seen[cand.key])
            found.append(cand.key)
            trained.append(False)
            continue
        outcome = table.query(cand.key, noise)
        trained.append(True)
        if outcome is None:
            tell(trial, None)
            found.append(None)
            continue
        seen[cand.key] = list(outcome)
        tell(trial, list(outcome))
        found.append(cand.key)
    return Trace(found, trained, asks, len(found) < trials, time.perf_counter() - started)


def _prescreen(table: Table, proposal: Candidate, seen: set[str], proxy: str, pool: int, rng: random.Random,
               noise: np.random.Generator) -> Candidate:
    """The pre-screen's own pool rule (nas.search.prescreen.pool_choice) on a table's networks and scores."""
    cands, _, best = pool_choice(proposal, lambda c: c.key, seen, lambda: table.draw(rng),
                                 lambda c: table.score(c.key, proxy, noise), pool)
    return cands[best]


@dataclass
class Curves:
    """Per trial count t = 1..T of one search: normalised hypervolume, found-best, front share, trained, failed."""

    hv: np.ndarray
    hv_fixed: np.ndarray
    best: np.ndarray
    share: np.ndarray
    trained: np.ndarray
    failed: np.ndarray


def curves(table: Table, trace: Trace, trials: int) -> Curves:
    """The metrics after each counted trial (a search that stopped early keeps its last values)."""
    out = Curves(*(np.zeros(trials) for _ in range(6)))
    found: list[str] = []
    hv = hv_fixed = best = share = 0.0
    trained = failed = 0
    for t in range(trials):
        if t < len(trace.found):
            key = trace.found[t]
            trained += trace.trained[t]
            failed += key is None
            if key is not None and key not in found:
                found.append(key)
                hv, hv_fixed = table.found_hv(found)
                best = float(bool(table.best & set(found)))
                share = len(table.front & set(found)) / len(table.front)
        out.hv[t], out.hv_fixed[t], out.best[t], out.share[t] = hv, hv_fixed, best, share
        out.trained[t], out.failed[t] = trained, failed
    return out


# ---- running and summarising -------------------------------------------------------------------------------


def _job(args: tuple[Table, Config, int, int, str, int]) -> tuple[Curves, Trace]:
    table, config, seed, trials, proxy, pool = args
    trace = replay(table, config, seed, trials, proxy=proxy, pool=pool)
    return curves(table, trace, trials), trace


def run_benchmark(table: Table, configs: Sequence[Config], *, seeds: int, trials: int, proxy: str, pool: int,
                  gp_seeds: int | None = None, jobs: int = 1, log: Any = print) -> dict[Config, dict[str, Any]]:
    """Replay every configuration over seeds 0..seeds−1 (GP over ``gp_seeds`` when given) to ``trials`` trials."""
    results: dict[Config, dict[str, Any]] = {}
    pool_ctx = None
    if jobs > 1:
        import multiprocessing

        pool_ctx = multiprocessing.get_context("fork").Pool(jobs)
    try:
        for config in configs:
            n = min(seeds, gp_seeds) if config.sampler == "gp" and gp_seeds else seeds
            tasks = [(table, config, s, trials, proxy, pool) for s in range(n)]
            started = time.perf_counter()
            done = pool_ctx.map(_job, tasks) if pool_ctx else [_job(t) for t in tasks]
            wall = time.perf_counter() - started
            cs = [c for c, _ in done]
            traces = [t for _, t in done]
            results[config] = {
                "seeds": n, "wall_s": wall, "s_per_search": float(np.mean([t.seconds for t in traces])),
                "hv": np.stack([c.hv for c in cs]), "hv_fixed": np.stack([c.hv_fixed for c in cs]),
                "best": np.stack([c.best for c in cs]),
                "share": np.stack([c.share for c in cs]), "trained": np.stack([c.trained for c in cs]),
                "failed": np.stack([c.failed for c in cs]), "stopped": float(np.mean([t.stopped for t in traces])),
                "asks": float(np.mean([t.asks for t in traces])),
            }
            log(f"  {config.label:18s} {n:4d} searches in {wall:7.1f} s ({results[config]['s_per_search']:.2f} s each)")
    finally:
        if pool_ctx is not None:
            pool_ctx.close()
    return results


def mean_ci(x: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """Mean over seeds (axis 0) with a 95 % percentile-bootstrap interval, per column."""
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    boots = x[idx].mean(axis=1)
    lo, hi = np.quantile(boots, [0.025, 0.975], axis=0)
    return x.mean(axis=0), lo, hi


def ratio_ci(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean(x) / mean(y) per column with a 95 % interval, both resampled over their own seeds."""
    bx = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    by = y[rng.integers(0, len(y), size=(n_boot, len(y)))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample where random found nothing: ratio inf
        ratios = bx / by
        point = x.mean(axis=0) / y.mean(axis=0)
        lo, hi = np.nanquantile(ratios, [0.025, 0.975], axis=0)
    return point, lo, hi


def summarise(results: Mapping[Config, Mapping[str, Any]], counts: Sequence[int], seed: int = 0
              ) -> list[dict[str, Any]]:
    """One row per configuration and trial count (see the CSV's columns)."""
    rng = np.random.default_rng(seed)
    baseline = next((r for c, r in results.items() if c.sampler == "random" and not c.prescreen), None)
    rows = []
    for config, r in results.items():
        cols = [t - 1 for t in counts]
        hv, hv_lo, hv_hi = (a[cols] for a in mean_ci(r["hv"], rng))
        pb, pb_lo, pb_hi = (a[cols] for a in mean_ci(r["best"], rng))
        sh, sh_lo, sh_hi = (a[cols] for a in mean_ci(r["share"], rng))
        hf, hf_lo, hf_hi = (a[cols] for a in mean_ci(r["hv_fixed"], rng))
        nan = np.full(len(cols), np.nan)
        ra, ra_lo, ra_hi = nan, nan, nan
        rf, rf_lo, rf_hi = nan, nan, nan
        if baseline is not None:
            ra, ra_lo, ra_hi = (a[cols] for a in ratio_ci(r["hv"], baseline["hv"], rng))
            rf, rf_lo, rf_hi = (a[cols] for a in ratio_ci(r["hv_fixed"], baseline["hv_fixed"], rng))
        for i, t in enumerate(counts):
            rows.append({
                "config": config.label, "sampler": config.sampler, "population": config.population or "",
                "prescreen": config.prescreen, "trials": t, "seeds": r["seeds"],
                "hv": hv[i], "hv_lo": hv_lo[i], "hv_hi": hv_hi[i],
                "ratio_to_random": ra[i], "ratio_lo": ra_lo[i], "ratio_hi": ra_hi[i],
                "p_best": pb[i], "p_best_lo": pb_lo[i], "p_best_hi": pb_hi[i],
                "front_share": sh[i], "front_share_lo": sh_lo[i], "front_share_hi": sh_hi[i],
                "hv_fixed": hf[i], "hv_fixed_lo": hf_lo[i], "hv_fixed_hi": hf_hi[i],
                "ratio_fixed": rf[i], "ratio_fixed_lo": rf_lo[i], "ratio_fixed_hi": rf_hi[i],
                "trained": float(r["trained"][:, t - 1].mean()), "failed": float(r["failed"][:, t - 1].mean()),
                "stopped_share": r["stopped"], "s_per_search": r["s_per_search"],
            })
    return rows


def _ci(v: float, lo: float, hi: float, digits: int = 3) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    head = ("| configuration | trials | seeds | hypervolume (normalised) | ratio to random | P(best found) | "
            "front share | HV, fixed ref. (ratio) | trained | failed |\n|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['config']} | {r['trials']} | {r['seeds']} | {_ci(r['hv'], r['hv_lo'], r['hv_hi'])} | "
        f"{_ci(r['ratio_to_random'], r['ratio_lo'], r['ratio_hi'], 2)} | "
        f"{_ci(r['p_best'], r['p_best_lo'], r['p_best_hi'], 2)} | "
        f"{_ci(r['front_share'], r['front_share_lo'], r['front_share_hi'], 2)} | "
        f"{r['hv_fixed']:.3f} (×{r['ratio_fixed']:.3f}) | {r['trained']:.1f} | {r['failed']:.1f} |\n"
        for r in sorted(rows, key=lambda r: (r["trials"], r["prescreen"], r["config"])))
    return head + body


def headline(rows: Sequence[Mapping[str, Any]], trials: int) -> list[str]:
    at = [r for r in rows if r["trials"] == trials]
    if not at:
        return [f"(no row at {trials} trials)"]
    out = [f"hypervolume ratio to random at {trials} trials (95 % interval, bootstrap over seeds):"]
    for r in sorted(at, key=lambda r: -r["ratio_to_random"] if np.isfinite(r["ratio_to_random"]) else 0):
        verdict = ""
        if np.isfinite(r["ratio_lo"]):
            verdict = ("  above random" if r["ratio_lo"] > 1 else "  below random" if r["ratio_hi"] < 1
                       else "  not distinguishable from random")
        out.append(f"  {r['config']:18s} ×{_ci(r['ratio_to_random'], r['ratio_lo'], r['ratio_hi'], 3)}{verdict:34s}"
                   f" (fixed reference: ×{_ci(r['ratio_fixed'], r['ratio_fixed_lo'], r['ratio_fixed_hi'], 3)})")
    return out


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()})


def chart(path: Path, results: Mapping[Config, Mapping[str, Any]], counts: Sequence[int], title: str) -> Path:
    """Normalised hypervolume against trials, one line per configuration with its 95 % band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from nas.analysis.plots import save

    fig = Figure(figsize=(8.5, 5.2), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    rng = np.random.default_rng(1)
    colors: dict[tuple[str, int | None], Any] = {}
    palette = iter(["#444444", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"])
    for config, r in results.items():
        color = colors.setdefault((config.sampler, config.population), next(palette, "#7f7f7f"))
        mean, lo, hi = mean_ci(r["hv"], rng)
        x = np.arange(1, len(mean) + 1)
        style = "--" if config.prescreen else "-"
        ax.plot(x, mean, style, color=color, lw=1.6, label=f"{config.label} (n={r['seeds']})")
        ax.fill_between(x, lo, hi, color=color, alpha=0.12 if not config.prescreen else 0.08, lw=0)
    for t in counts:
        ax.axvline(t, color="#bbbbbb", lw=0.8, ls=":")
    ax.set_xlabel("trials (counted as `nas search` counts them; reused duplicates included)")
    ax.set_ylabel("hypervolume / hypervolume of the true front")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2, title="solid: sampler; dashed: + zero-cost pre-screen",
              title_fontsize=7)
    return save(fig, path)


# ---- proxies, constructed studies --------------------------------------------------------------------------


def audit_proxy(audit: Path | None) -> tuple[str, str]:
    """(zc column, why): the audit's default proxy when it is a zero-cost proxy, else its best-ranked zero-cost
    proxy, else zc_naswot when no audit can be analysed."""
    if audit is None or not (Path(audit) / "run.yaml").exists():
        return "zc_naswot", "no audit run: zc_naswot (the default)"
    try:
        from nas.analysis.audit import analyze_audit
        from nas.analysis.audit_choice import choose_default_proxy
        from nas.run import RunStore

        analysis = analyze_audit(RunStore(audit), n_resamples=500)
        choice = choose_default_proxy(analysis)
    except NASError as exc:
        return "zc_naswot", f"the audit in {audit} cannot choose yet ({str(exc)[:160]}): zc_naswot (the default)"
    if choice["chosen"] and str(choice["chosen"]).startswith("zc_"):
        return choice["chosen"], f"the audit's default proxy ({choice['statement'][:200]})"
    zc = [s for s in analysis.table("accuracy") if s.kind == "zero-cost" and s.tau is not None]
    if not zc:
        return "zc_naswot", "the audit ranks no zero-cost proxy: zc_naswot (the default)"
    top = max(zc, key=lambda s: s.tau)  # type: ignore[arg-type,return-value]
    return top.signal, (f"the audit's default ({choice['chosen'] or 'none'}) is not a zero-cost proxy; its "
                        f"best-ranked zero-cost proxy is {top.signal} (τ = {top.tau:+.2f})")


CONSTRUCTED_EFFECTS: dict[str, dict[str, dict[str, float]]] = {
    "accuracy": {"block": {"separable": 0.02, "basic": 0.01, "inverted": -0.01, "sandglass": -0.02},
                 "activation": {"gelu": 0.01, "relu2": -0.05, "starrelu": -0.03, "solu": -0.02},
                 "norm": {"layer": -0.005}},
    "interference": {"block": {"inverted": 0.04, "nodepth": -0.04, "separable": -0.02},
                     "activation": {"relu2": 0.03, "starrelu": 0.03, "solu": 0.02, "gelu": -0.01}},
}


def make_constructed_study(path: Path, *, seed: int = 0, zc_corr: float = 0.6, repeats: int = 2) -> Path:
    """A constructed study (nas.testing.make_study_run, CONSTRUCTED_EFFECTS, seed SD 0.01) whose zc_naswot
    correlates with accuracy at about ``zc_corr``; the other zero-cost columns are noise."""
    from nas.testing import make_study_run

    store = make_study_run(path, effects=CONSTRUCTED_EFFECTS, noise=0.01, repeats=repeats, seed=seed)
    records = store.records()
    rng = np.random.default_rng(seed + 7)
    acc = np.array([r.accuracy if r.accuracy is not None else np.nan for r in records])
    z = (acc - np.nanmean(acc)) / (np.nanstd(acc) or 1.0)
    out = []
    for r, zi in zip(records, z, strict=True):
        base = zi if np.isfinite(zi) else rng.normal()
        naswot = zc_corr * base + math.sqrt(1 - zc_corr**2) * rng.normal()
        out.append(r.replace(zc_naswot=float(naswot), zc_synflow=float(rng.normal()), zc_snip=float(rng.normal()),
                             zc_grad_norm=float(rng.normal()), zc_jacob_cov=float(rng.normal())))
    store.write_records(out)
    return store.root


# ---- command line ------------------------------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    try:
        counts = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ConfigError(f"--trials takes trial counts such as 10,20,40, got {shown(text)}") from None
    if not counts or counts[0] < 1:
        raise ConfigError(f"--trials takes trial counts of 1 or more, got {shown(text)}")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=ROOT / "results" / "study", help="a `nas study` run folder")
    parser.add_argument("--constructed", action="store_true",
                        help="benchmark a constructed study (planted effects, zc_naswot correlated 0.6 with accuracy)")
    parser.add_argument("--seeds", type=int, default=100, help="searches per configuration (default 100)")
    parser.add_argument("--gp-seeds", type=int, default=DEFAULT_GP_SEEDS,
                        help=f"searches for GP, capped because a 40-trial GP search takes ~10 s on 2 busy CPUs "
                             f"(default {DEFAULT_GP_SEEDS}; 0: as many as --seeds)")
    parser.add_argument("--trials", default=DEFAULT_TRIALS, help=f"trial counts (default {DEFAULT_TRIALS})")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help=f"samplers, nsga2:POP for NSGA-II (default {DEFAULT_CONFIGS}); each also with +ps")
    parser.add_argument("--no-prescreen", action="store_true", help="skip the pre-screened variants")
    parser.add_argument("--failures", default="infeasible", choices=("infeasible", "fail", "both"),
                        help="how failed trials are told: as infeasible complete trials (what `nas search` does), "
                             "as FAIL (runs before constraints), or both side by side (default infeasible)")
    parser.add_argument("--prescreen", default=DEFAULT_PROXY, metavar="NAME",
                        help=f"zero-cost proxy of the pre-screen (default {DEFAULT_PROXY}, what `nas search` ships), "
                             "or 'audit': the audit's choice (--audit), else naswot")
    parser.add_argument("--prescreen-pool", type=int, default=DEFAULT_POOL, help=f"pool size (default {DEFAULT_POOL})")
    parser.add_argument("--audit", type=Path, default=ROOT / "results" / "audit", help="audit run for the proxy")
    parser.add_argument("--surrogate", action="store_true",
                        help="also validate a surrogate of the full default space; benchmark on it if τ ≥ 0.7")
    parser.add_argument("--surrogate-runs", default="results/study,results/audit,results/example",
                        help="runs whose records fit the surrogate")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "search_quality", help="output folder")
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except NASError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore")  # Optuna's experimental-feature and GP independent-sampling warnings
    import torch

    torch.set_num_threads(1)  # GP fits: one thread, a good neighbour on a shared machine
    counts = _counts(args.trials)
    if args.seeds < 2:
        raise ConfigError(f"--seeds must be at least 2 (intervals need them), got {args.seeds}")
    if args.prescreen_pool < 1:
        raise ConfigError(f"--prescreen-pool must be at least 1, got {args.prescreen_pool}")
    configs = parse_configs(args.configs, prescreen=not args.no_prescreen, failures=args.failures)
    if args.prescreen.strip().lower() == "audit":
        proxy, why = audit_proxy(args.audit)
    elif proxy_name(args.prescreen) == DEFAULT_PROXY:
        proxy, why = f"zc_{DEFAULT_PROXY}", "the pre-screen `nas search` ships"
    else:
        proxy, why = "zc_" + proxy_name(args.prescreen), "given with --prescreen"
    with tempfile.TemporaryDirectory() as tmp:
        source = make_constructed_study(Path(tmp) / "constructed") if args.constructed else args.study
        if not (Path(source) / "run.yaml").exists():
            raise ConfigError(f"--study {source} is not a run folder (no run.yaml)")
        table = StudyTable(source, [proxy])
        if args.constructed:
            table.notes[0] = "CONSTRUCTED study (bench make_constructed_study: planted effects, seed SD 0.01, " \
                             "zc_naswot ~0.6 correlated with accuracy): " + table.notes[0]
        run_table(table, configs, counts, args, proxy, why, args.out)
    if args.surrogate:
        from _surrogate import surrogate_section

        surrogate_section(args, configs, counts, proxy, why, run_table)
    return 0


def run_table(table: Table, configs: Sequence[Config], counts: Sequence[int], args: argparse.Namespace,
              proxy: str, why: str, out: Path) -> list[dict[str, Any]]:
    """Benchmark one table; print and write the table, CSV, chart and headline; return the rows."""
    for line in table.notes:
        print(line)
    front = sorted(table.front, key=lambda k: table.networks[k].truth[1])  # type: ignore[index]
    best = sorted(table.best)
    ref = tuple(round(float(v), 4) for v in table.reference)
    print(f"truth: per network the median of its complete records; true front {len(front)} network(s), "
          f"hypervolume {table.hv_true:.4g} against reference (loss) {ref}"
          f" ({table.hv_true_fixed:.4f} against the fixed {tuple(float(v) for v in table.reference_fixed)}); "
          f"best accuracy {table.networks[best[0]].truth[0]:.4f} ({', '.join(table.networks[k].label for k in best)})")
    print(f"pre-screen: {proxy}, pool {args.prescreen_pool} ({why})")
    gp = any(c.sampler == "gp" for c in configs) and args.gp_seeds and args.gp_seeds < args.seeds
    print(f"replaying {len(configs)} configuration(s) to {max(counts)} trials, {args.seeds} seeds each"
          + (f" (GP: {args.gp_seeds}, its cap; --gp-seeds {args.seeds} for all)" if gp else ""), flush=True)
    results = run_benchmark(table, configs, seeds=args.seeds, trials=max(counts), proxy=proxy,
                            pool=args.prescreen_pool, gp_seeds=args.gp_seeds, jobs=args.jobs,
                            log=lambda s: print(s, flush=True))
    rows = summarise(results, counts)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(rows)
    head = headline(rows, HEADLINE_TRIALS if HEADLINE_TRIALS in counts else counts[len(counts) // 2])
    stopped = [f"{c.label} {r['stopped']:.0%}" for c, r in results.items() if r["stopped"]]
    notes = [*table.notes, f"pre-screen: {proxy}, pool {args.prescreen_pool} ({why})"]
    if stopped:
        notes.append(f"searches that gave up before their trial count ({MAX_SKIPS} unevaluable proposals in a "
                     f"row): {', '.join(stopped)}")
    (out / "search_quality.md").write_text("# Search quality (bench/search_quality.py)\n\n" +
                                           "".join(f"- {n}\n" for n in notes) + "\n" + md + "\n" +
                                           "\n".join(head) + "\n\n![hypervolume](search_quality.png)\n")
    write_csv(out / "search_quality.csv", rows)
    title = ("PARTIAL " if getattr(table, "partial", False) else "") + table.name + \
        ": normalised hypervolume, mean and 95 % interval over seeds"
    chart(out / "search_quality.png", results, counts, title)
    print()
    print(md)
    if stopped:
        print(notes[-1])
    print("\n".join(head))
    print(f"\nwritten: {out / 'search_quality.md'}, search_quality.csv, search_quality.png")
    return rows


if __name__ == "__main__":
    sys.exit(main())

"""The surrogate of bench/search_quality.py: a model of the full default space, used only once it is validated.

Fitted on every complete, trained (not reused) record at the study's fidelity found in the given runs (study,
audit panel, example searches): one model per objective and one for the pre-screen's zero-cost score (each
the mean of a ridge regression and a random forest, scikit-learn), on features of the architecture's choices
(per stage: family, activation, norm, expansion, depthwise, kernel, depth; widths are left out, since the
budget solver sets them from the choices).

Validation: out-of-fold predictions over ``FOLDS`` folds grouped by network (a network's repeats never sit on
both sides), Kendall τ between prediction and record per objective. The surrogate is used only when τ ≥
``TAU_MIN`` for both objectives with at least ``MIN_NETWORKS`` distinct networks; otherwise the benchmark says
which τ it reached and runs nothing on it.

When used, the table is every architecture of the default space (enumerated, reference widths: the 0.2 % whose
widths miss the budget window are not known without solving each, and are kept); a network's truth is the
model's prediction, and a query adds Gaussian noise of the pooled seed-to-seed SD of networks recorded more
than once (the out-of-fold residual SD when none is).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TAU_MIN = 0.7
MIN_NETWORKS = 20
FOLDS = 5


@dataclass
class Sample:
    """One recorded evaluation: the network, its objective values, and its zero-cost score (NaN if none)."""

    arch: str
    key: str
    values: tuple[float, float]
    zc: float


def arch_features(arch: Any) -> dict[str, Any]:
    """Choices of an Architecture as a feature mapping (categoricals as strings, depth as a number)."""
    out: dict[str, Any] = {}
    for i, st in enumerate(arch.stages):
        st = st.folded()
        for name in ("block", "activation", "norm", "expansion", "depthwise", "kernel"):
            out[f"s{i}.{name}"] = str(getattr(st, name))
        out[f"s{i}.depth"] = float(st.depth)
    out["depth"] = float(sum(st.depth for st in arch.stages))
    return out


def collect(runs: Sequence[Path], fidelity: str, objectives: Sequence[Any], proxy: str) -> tuple[list[Sample],
                                                                                               list[str]]:
    """Complete, trained records at ``fidelity`` in ``runs`` (a missing or unreadable run is noted and skipped)."""
    from nas.errors import NASError
    from nas.run import RunStore

    samples: list[Sample] = []
    notes: list[str] = []
    for run in runs:
        store = RunStore(run)
        if not store.exists():
            notes.append(f"{run}: no run.yaml, skipped")
            continue
        try:
            records = store.records()
        except NASError as exc:
            notes.append(f"{run}: {str(exc)[:120]}, skipped")
            continue
        n = 0
        for r in records:
            if r.reused or not r.complete or r.fidelity != fidelity:
                continue
            vals = [r.finite(o.name) for o in objectives]
            if any(v is None for v in vals):
                continue
            zc = r.finite(proxy)
            samples.append(Sample(r.arch, r.arch_hash, (vals[0], vals[1]), np.nan if zc is None else zc))  # type: ignore[arg-type]
            n += 1
        notes.append(f"{run}: {n} record(s) at {fidelity}")
    return samples, notes


class _Model:
    """The mean of a ridge regression (additive main effects, strong with few records) and a random forest
    (interactions such as a superlinear activation after BatchNorm landing at chance)."""

    def __init__(self, seed: int, trees: int = 100) -> None:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import RidgeCV

        self.parts = [RidgeCV(alphas=np.logspace(-3, 3, 13)),
                      RandomForestRegressor(n_estimators=trees, max_features=0.3, random_state=seed, n_jobs=1)]

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Model:
        for m in self.parts:
            m.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(x) for m in self.parts], axis=0)


@dataclass
class Validation:
    """Held-out agreement of the surrogate with the records."""

    n_records: int
    n_networks: int
    tau: dict[str, float | None]
    passes: bool
    reason: str
    noise: tuple[float, float] = (0.01, 0.01)


def validate(samples: Sequence[Sample], names: Sequence[str], *, seed: int = 0, trees: int = 100) -> Validation:
    """Out-of-fold Kendall τ per objective (and for the zero-cost score), folds grouped by network."""
    from scipy.stats import kendalltau
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.model_selection import GroupKFold

    from nas.space.architecture import Architecture

    keys = sorted({s.key for s in samples})
    tau: dict[str, float | None] = {n: None for n in (*names, "zc")}
    if len(keys) < 3:
        return Validation(len(samples), len(keys), tau, False, f"only {len(keys)} distinct network(s) recorded")
    vec = DictVectorizer(sparse=False)
    x = vec.fit_transform([arch_features(Architecture.parse(s.arch)) for s in samples])
    groups = np.array([s.key for s in samples])
    targets = {names[0]: np.array([s.values[0] for s in samples]), names[1]: np.array([s.values[1] for s in samples]),
               "zc": np.array([s.zc for s in samples])}
    residual_sd = []
    for name, y in targets.items():
        ok = np.isfinite(y)
        n_groups = len(set(groups[ok]))
        if n_groups < 3:
            continue
        pred = np.full(len(y), np.nan)
        for train, test in GroupKFold(n_splits=min(FOLDS, n_groups)).split(x[ok], y[ok], groups[ok]):
            model = _Model(seed, trees).fit(x[ok][train], y[ok][train])
            pred[np.flatnonzero(ok)[test]] = model.predict(x[ok][test])
        t = kendalltau(pred[ok], y[ok]).statistic
        tau[name] = None if not np.isfinite(t) else float(t)
        if name != "zc":
            residual_sd.append(float(np.std(pred[ok] - y[ok])))
    noise = _seed_sd(samples) or (tuple(residual_sd) if len(residual_sd) == 2 else (0.01, 0.01))
    low = [n for n in names if tau[n] is None or tau[n] < TAU_MIN]  # type: ignore[operator]
    if len(keys) < MIN_NETWORKS:
        reason = f"only {len(keys)} distinct networks recorded (at least {MIN_NETWORKS} needed)"
    elif low:
        reason = f"held-out τ below {TAU_MIN} for {', '.join(low)}"
    else:
        reason = f"held-out τ ≥ {TAU_MIN} for every objective"
    return Validation(len(samples), len(keys), tau, not low and len(keys) >= MIN_NETWORKS, reason,
                      noise)  # type: ignore[arg-type]


def _seed_sd(samples: Sequence[Sample]) -> tuple[float, float] | None:
    """Pooled within-network SD per objective over networks recorded more than once (None: too few)."""
    by: dict[str, list[tuple[float, float]]] = {}
    for s in samples:
        by.setdefault(s.key, []).append(s.values)
    groups = [np.array(v) for v in by.values() if len(v) > 1]
    if len(groups) < 3:
        return None
    dof = sum(len(g) - 1 for g in groups)
    var = sum(((g - g.mean(axis=0)) ** 2).sum(axis=0) for g in groups) / dof
    return float(np.sqrt(var[0])), float(np.sqrt(var[1]))


def make_surrogate_table(samples: Sequence[Sample], validation: Validation, objectives: Sequence[Any], space: Any,
                         *, seed: int = 0) -> Any:
    """The benchmark table of the full space: every architecture, valued by the fitted surrogate."""
    from search_quality import Candidate, Network, Table
    from sklearn.feature_extraction import DictVectorizer

    from nas.search.prescreen import draw_with_params
    from nas.space.architecture import Architecture

    vec = DictVectorizer(sparse=False)
    x = vec.fit_transform([arch_features(Architecture.parse(s.arch)) for s in samples])
    archs = list(space.enumerate())
    xa = vec.transform([arch_features(a) for a in archs])
    preds = []
    for i in range(2):
        y = np.array([s.values[i] for s in samples])
        preds.append(_Model(seed).fit(x, y).predict(xa))
    zc_y = np.array([s.zc for s in samples])
    ok = np.isfinite(zc_y)
    zc_pred = _Model(seed).fit(x[ok], zc_y[ok]).predict(xa) if ok.sum() >= 3 else np.full(len(archs), np.nan)
    sd_zc = float(np.nanstd(zc_y)) * 0.5 if ok.any() else 0.0

    class SurrogateTable(Table):
        def __init__(self) -> None:
            self.name = f"surrogate of {space.name} ({len(archs):,} architectures)"
            self.objectives = list(objectives)
            self.networks = {}
            self.mean_zc: dict[str, float] = {}
            for a, p0, p1, z in zip(archs, preds[0], preds[1], zc_pred, strict=True):
                net = Network(a.semantic_hash, a.to_string(), [(float(p0), float(p1))])
                self.networks[net.key] = net
                self.mean_zc[net.key] = float(z)
            self.partial = False
            self.notes = [f"SURROGATE: {self.name}, ridge + forest models fitted on {validation.n_records} records of "
                          f"{validation.n_networks} networks; query noise SD {validation.noise[0]:.4f} / "
                          f"{validation.noise[1]:.4f}; held-out τ {validation.tau}"]
            self._truth()

        def _cand(self, arch: Any, params: dict[str, Any]) -> Candidate:
            return Candidate(arch.semantic_hash, params)

        def suggest(self, trial: Any) -> Candidate | None:
            return self._cand(space.suggest(trial), dict(trial.params))

        def draw(self, rng: random.Random) -> Candidate | None:
            arch, params = draw_with_params(space, rng)
            return self._cand(arch, params)

        def query(self, key: str, rng: np.random.Generator) -> tuple[float, float] | None:
            mean = self.networks[key].outcomes[0]
            assert mean is not None
            return (float(mean[0] + rng.normal(0, validation.noise[0])),
                    float(mean[1] + rng.normal(0, validation.noise[1])))

        def score(self, key: str, proxy: str, rng: np.random.Generator) -> float:
            return float(self.mean_zc[key] + rng.normal(0, sd_zc))

    return SurrogateTable()


def surrogate_section(args: argparse.Namespace, configs: Sequence[Any], counts: Sequence[int], proxy: str, why: str,
                      run_table: Callable[..., Any]) -> Validation:
    """Validate the surrogate on the recorded trials; benchmark on it only when it passes. Prints what it did."""
    from nas.run import RunStore

    study = RunStore(args.study).read_config() if (Path(args.study) / "run.yaml").exists() else None
    if study is None:
        print("\nsurrogate: no study run to take the fidelity and objectives from; skipped")
        return Validation(0, 0, {}, False, "no study run")
    root = Path(__file__).resolve().parents[1]
    runs = [Path(r) if Path(r).is_absolute() else root / r for r in args.surrogate_runs.split(",") if r]
    samples, notes = collect(runs, study.fidelity.name, study.objectives, proxy)
    names = [o.name for o in study.objectives]
    v = validate(samples, names)
    taus = ", ".join(f"{k} {'n/a' if t is None else f'{t:+.3f}'}" for k, t in v.tau.items())
    print(f"\nsurrogate of the full space: {v.n_records} records of {v.n_networks} networks at "
          f"{study.fidelity.name} ({'; '.join(notes)})")
    print(f"  held-out Kendall τ ({FOLDS}-fold, grouped by network): {taus}")
    if not v.passes:
        print(f"  not used: {v.reason}")
        return v
    print(f"  used: {v.reason}")
    from nas.space import Space, parse_space

    space = Space(parse_space(study.space, str(Path(args.study) / "run.yaml")))
    table = make_surrogate_table(samples, v, study.objectives, space)
    run_table(table, configs, counts, args, proxy, why, args.out / "surrogate")
    return v

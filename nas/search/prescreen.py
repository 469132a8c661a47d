"""Zero-cost pre-screening of `nas search --prescreen NAME --prescreen-pool N`: train only a pool's best by a proxy.

For each new proposal the searcher asks the Optuna sampler as usual, budget-solves the answer, and hands it to
:class:`Prescreen`, which draws ``N − 1`` more architectures from the space with a seeded RNG (budget-solved;
infeasible draws, duplicates and networks already trained or in flight are skipped; one above the run's ceilings
cannot win), scores the whole pool with the one zero-cost proxy (``nas.metrics.zero_cost.score_architecture``, about
a second per 1.5M network on two CPU threads) and keeps the highest score (:func:`best_candidate`: a non-finite
score ranks last; on a tie the sampler's own proposal wins). When the sampler's proposal wins it is trained as
usual. Otherwise the proposal is told to the study as FAIL (user attribute ``reason``: replaced by the pre-screen;
it is not a trial of the run and costs no training) and the winner is enqueued into the study with its parameters
(``study.enqueue_trial``, user attribute ``prescreen_of``); the next ``ask`` returns it, so the sampler is told its
result and learns from it like any trial. A proposal the sampler made of a network already trained scores last, so
the pre-screen spends the trial on a new network whenever the pool has one.

Why the sampler's own proposal is in the pool, rather than a pool of random draws only: with every trial
enqueued the sampler would never propose again, and ``--sampler`` would not matter. Why the rest of the pool
is drawn from the space rather than asked from the sampler: asking N times puts N trials into the study per
trained network (N − 1 of them FAIL), which moves NSGA-II's generations and crowds the study's history.
``bench/search_quality.py`` replays the same rule against recorded results.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nas.errors import BudgetError, ConfigError, shown
from nas.objectives import ZERO_COST_NAMES

PROXIES: tuple[str, ...] = ZERO_COST_NAMES
# The default, from bench/search_quality.py on results/study (100 seeds per configuration): a synflow pre-screen
# of 8 raises the normalised hypervolume at 20 trials ×1.35–1.40 over random sampling, whatever the sampler;
# no sampler without it is distinguishable from random there. The audit (results/audit) does not overturn it:
# no zero-cost proxy clears params against its reference, and NASWOT (the audit's best zero-cost τ, +0.34
# against synflow's +0.19, intervals overlapping) pre-screens below random in the same replay (×0.64–0.68).
# `--prescreen none` turns it off.
DEFAULT_PROXY = "synflow"
DEFAULT_POOL = 8  # candidates per trial when --prescreen-pool is not given
OFF = ("none", "off")  # --prescreen values that turn the pre-screen off
MAX_POOL = 10_000
DRAWS_PER_SLOT = 20  # random draws tried per pool slot before the pool is left smaller


def proxy_name(name: str) -> str:
    """A proxy as the user may type it (``naswot`` or the record's column ``zc_naswot``) → its bare name."""
    bare = name.removeprefix("zc_") if isinstance(name, str) else name
    if bare not in PROXIES:
        raise ConfigError(f"--prescreen: unknown zero-cost proxy {shown(name)}; choose one of {', '.join(PROXIES)}")
    return bare


def check_prescreen(proxy: str | None, pool: int | None) -> tuple[str | None, int | None]:
    """(bare proxy name, pool size) of the two options; None, None when pre-screening is off.

    Not given (None) is the default (``DEFAULT_PROXY``, ``DEFAULT_POOL``); ``none`` or ``off`` turns the
    pre-screen off. ConfigError for an unknown proxy, a pool below 1 (or above ``MAX_POOL``), and a pool
    given with the pre-screen off.
    """
    if isinstance(proxy, str) and proxy.strip().lower() in OFF:
        if pool is not None:
            raise ConfigError(f"--prescreen-pool {shown(pool)} needs a pre-screen, but --prescreen {shown(proxy)} "
                              "turns it off")
        return None, None
    try:
        name = proxy_name(DEFAULT_PROXY if proxy is None else proxy)
    except ConfigError as exc:
        raise ConfigError(f"{exc}, or none (no pre-screen)") from None
    if pool is not None and (isinstance(pool, bool) or not isinstance(pool, int) or not 1 <= pool <= MAX_POOL):
        raise ConfigError(f"--prescreen-pool must be from 1 to {MAX_POOL:,} candidates per trial, got {shown(pool)}")
    return name, DEFAULT_POOL if pool is None else pool


def best_candidate(scores: Sequence[float]) -> int:
    """Index of the highest finite score; the first of equals (the sampler's proposal is first); 0 if none is."""
    best, best_score = 0, -math.inf
    for i, score in enumerate(scores):
        if score is not None and math.isfinite(score) and score > best_score:
            best, best_score = i, score
    return best


T = TypeVar("T")


def pool_choice(proposal: T, key: Callable[[T], str], taken: Collection[str], draw: Callable[[], T | None],
                score: Callable[[T], float], pool: int) -> tuple[list[T], list[float], int]:
    """The pool rule: the proposal, then up to ``pool`` − 1 distinct new candidates from ``draw`` (None: a draw
    that did not fit; ``DRAWS_PER_SLOT`` tries per slot), skipping keys in ``taken``; a proposal already taken
    scores −inf. Returns the pool, its scores and the index of the best (:func:`best_candidate`)."""
    candidates = [proposal]
    seen = {key(proposal), *taken}
    for _ in range(DRAWS_PER_SLOT * max(0, pool - 1)):
        if len(candidates) >= pool:
            break
        candidate = draw()
        if candidate is None or key(candidate) in seen:
            continue
        seen.add(key(candidate))
        candidates.append(candidate)
    scores = [-math.inf if i == 0 and key(c) in taken else score(c) for i, c in enumerate(candidates)]
    return candidates, scores, best_candidate(scores)


def draw_with_params(space: Any, rng: random.Random) -> tuple[Any, dict[str, Any]]:
    """One architecture drawn uniformly per decision (as ``Space.sample``) and the Optuna parameters naming it."""
    params: dict[str, Any] = {}

    def pick(key: str, values: tuple[Any, ...]) -> Any:
        params[key] = values[rng.randrange(len(values))]
        return params[key]

    return space.build(pick), params


@dataclass
class Choice:
    """What the pre-screen decided for one proposal: the winner's solved network and parameters, and why."""

    solved: Any  # nas.sampling.Solved
    params: dict[str, Any] | None  # None: the sampler's own proposal won
    scores: list[float] = field(default_factory=list)  # the pool's scores, the proposal's first
    note: str = ""

    @property
    def replaced(self) -> bool:
        return self.params is not None


@dataclass
class Prescreen:
    """The pool rule of the module docstring, for one search (``data`` is the run's data set, as trials see it)."""

    proxy: str
    pool: int
    seed: int
    space: Any
    budget: Any
    shape: Any
    data: Any
    threads: int | None = None
    score: Callable[[Any], float] | None = None  # architecture -> score; default: the proxy on ``data``
    within: Callable[[Any], bool] | None = None  # architecture -> within the run's ceilings (else it cannot win)

    def _score(self, arch: Any) -> float:
        if self.score is not None:
            return float(self.score(arch))
        from nas.metrics.zero_cost import score_architecture

        try:
            value = score_architecture(arch, self.data, seed=self.seed, proxies=[self.proxy], threads=self.threads)
        except Exception:  # a network the proxy cannot score ranks last; its trial will say what is wrong
            return math.nan
        return float(value[f"zc_{self.proxy}"])

    def choose(self, number: int, proposal: Any, taken: Collection[str]) -> Choice:
        """The pool's best for the proposal of trial ``number`` (``taken``: hashes trained or in flight)."""
        from nas.sampling import fit

        rng = random.Random(self.seed * 1_000_003 + number)  # reproducible per trial, whatever came before

        def draw() -> tuple[Any, dict[str, Any] | None] | None:
            arch, params = draw_with_params(self.space, rng)
            try:
                return fit(arch, self.budget, self.shape), params
            except BudgetError:
                return None

        pool, scores, best = pool_choice((proposal, None), lambda c: c[0].arch.semantic_hash, taken, draw,
                                         lambda c: self._score(c[0].arch), self.pool)
        # Above a ceiling a candidate cannot win; checked best first, so few networks are measured (the proposal
        # was checked before it came here).
        ranked = list(scores)
        while best != 0 and self.within is not None and not self.within(pool[best][0].arch):
            ranked[best] = -math.inf
            best = best_candidate(ranked)
        solved, params = pool[best]
        shown_score = "n/a" if not math.isfinite(scores[best]) else f"{scores[best]:.4g}"
        note = (f"{self.proxy} {shown_score}, best of a pool of {len(pool)}" if best == 0 else
                f"replaced by a pool candidate with a higher {self.proxy} ({shown_score}; pool of {len(pool)})")
        return Choice(solved, params, scores, note)


def make_prescreen(config: Any, *, space: Any, shape: Any, data: Any, threads: int | None,
                   constraints: Any = None) -> Prescreen | None:
    """The run's pre-screen from its RunConfig (``prescreen``, ``prescreen_pool``), or None when it has none;
    with ``constraints`` (nas.constraints.Constraints) no candidate above the run's ceilings can win."""
    if getattr(config, "prescreen", None) is None:
        return None
    proxy, pool = check_prescreen(config.prescreen, config.prescreen_pool)
    assert proxy is not None and pool is not None
    within = None if constraints is None or not constraints.ceilings else (
        lambda arch: constraints.broken(arch) is None)
    return Prescreen(proxy=proxy, pool=pool, seed=config.seed, space=space, budget=config.budget, shape=shape,
                     data=data, threads=threads, within=within)

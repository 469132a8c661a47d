"""Which networks to retrain: the Pareto front spread (top K), trial ids, architecture strings, fixed baselines.

Every candidate carries the parameter count it must rebuild with: the count recorded at search time for a
trial, the analytic count for a string or a baseline. ``verify_params`` fails loudly when a rebuild differs;
every candidate is checked to fit in memory (``nas.sampling.fit``) before anything is written or trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nas.errors import BudgetError, ConfigError, RunStoreError, SpaceError, shown
from nas.objectives import Objective
from nas.run import RunConfig, TrialRecord, one_per_architecture, pareto_front
from nas.sampling import Shape
from nas.space.architecture import Architecture
from nas.space.budget import Budget
from nas.space.paths import packaged_space

BASELINES_DIR = packaged_space("baselines")


@dataclass(frozen=True)
class Candidate:
    """One network to retrain and where it came from."""

    kind: str  # "trial", "baseline" or "arch"
    source: str  # the trial id, the baseline's name, or "" for an architecture string
    arch: Architecture
    params: int  # the count it must rebuild with
    record: TrialRecord | None = None  # the search record (proxy metrics), when there is one

    @property
    def arch_hash(self) -> str:
        return self.arch.semantic_hash

    @property
    def label(self) -> str:
        if self.kind == "trial":
            return f"trial {self.source}"
        if self.kind == "baseline":
            return f"baseline {self.source}"
        return "architecture"


# ---- the Pareto front -----------------------------------------------------------------------------------------


def spread_indices(n: int, k: int) -> list[int]:
    """``k`` indices of ``range(n)`` evenly spaced from the first to the last (both included when k >= 2)."""
    if k < 1:
        raise ConfigError(f"--top must be at least 1, got {k}")
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    step = (n - 1) / (k - 1)  # >= 1, so floor(i * step + 0.5) is strictly increasing
    return [math.floor(i * step + 0.5) for i in range(k)]


def sort_front(front: Sequence[TrialRecord], objectives: Sequence[Objective]) -> list[TrialRecord]:
    """Front records ordered along the front: best first objective first (ties: the next objectives, then id)."""

    def key(record: TrialRecord) -> tuple[float, ...]:
        return (*(float(o.to_loss(record.finite(o.name))) for o in objectives), float(record.trial_id))

    return sorted(front, key=key)


def spread_front(front: Sequence[TrialRecord], objectives: Sequence[Objective], k: int) -> list[TrialRecord]:
    """The top ``k`` of a front, spread along it: sorted by the first objective, evenly spaced indices."""
    ordered = sort_front(front, objectives)
    return [ordered[i] for i in spread_indices(len(ordered), k)]


def top_of_front(records: Sequence[TrialRecord], config: RunConfig, k: int, where: Path) -> list[Candidate]:
    """The top ``k`` of the run's front at its own fidelity (``nas.run.pareto_front``; no Optuna study needed)."""
    front = pareto_front(records, config.objectives, config.fidelity.name)
    if not front:
        raise RunStoreError(f"run {where} has no complete trial at its fidelity {shown(config.fidelity.name)} with "
                            "finite objectives, so its Pareto front is empty; use --trial or --arch.")
    return from_records(spread_front(front, config.objectives, k))


# ---- the three kinds of selection ----------------------------------------------------------------------------


def from_records(records: Sequence[TrialRecord]) -> list[Candidate]:
    """Candidates for search records (the architecture parsed from its string, the recorded count)."""
    out = []
    for r in records:
        try:
            arch = Architecture.parse(r.arch)
        except SpaceError as exc:
            raise RunStoreError(f"trial {r.trial_id}: its architecture string does not parse: {exc}") from None
        if arch.semantic_hash != r.arch_hash:
            raise RunStoreError(
                f"trial {r.trial_id}: its architecture string hashes to {arch.semantic_hash}, but the run "
                f"recorded {shown(r.arch_hash)}; the record was written by another version of bottleneck-nas."
            )
        if r.params is None:
            raise RunStoreError(f"trial {r.trial_id} has no recorded parameter count; its record is incomplete.")
        out.append(Candidate("trial", str(r.trial_id), arch, r.params, r))
    return out


def by_trial_ids(records: Sequence[TrialRecord], ids: Sequence[int], where: Path) -> list[Candidate]:
    """Candidates for explicit trial ids; an unknown id or a trial that did not complete is an error."""
    by_id = {r.trial_id: r for r in records}
    picked = []
    for i in dict.fromkeys(ids):
        if i not in by_id:
            known = f"{min(by_id)}..{max(by_id)}" if by_id else "none"
            raise RunStoreError(f"trial {shown(i)} is not in run {where} (its trial ids are {known}); see trials.csv.")
        r = by_id[i]
        if not r.complete:
            raise RunStoreError(
                f"trial {i} of {where} is {r.status} ({r.reason or 'no reason recorded'}); only complete "
                "trials can be retrained. Pass its architecture with --arch to train it anyway."
            )
        picked.append(r)
    return from_records(one_per_architecture(picked))


def parse_arch_strings(texts: Sequence[str]) -> list[Architecture]:
    """``--arch`` strings parsed, once each, in order (checked before any data is loaded)."""
    out = []
    for text in dict.fromkeys(texts):
        try:
            out.append(Architecture.parse(text))
        except SpaceError as exc:
            raise SpaceError(f"--arch {shown(text, 40)} does not parse: {exc}") from None
    return out


def by_arch_strings(archs: Sequence[Architecture], records: Sequence[TrialRecord], shape: Shape) -> list[Candidate]:
    """Candidates for parsed ``--arch`` strings (taken as written); one the run evaluated keeps its record."""
    from nas.models import count_params

    known: dict[str, TrialRecord] = {}
    for r in records:
        if r.complete:
            known.setdefault(r.arch_hash, r)
    out = []
    for arch in archs:
        record = known.get(arch.semantic_hash)
        if record is not None:
            out.extend(from_records([record]))
            continue
        params = count_params(arch, in_channels=shape.in_channels, num_classes=shape.num_classes)
        out.append(Candidate("arch", "", arch, params, None))
    return out


def baseline_names(folder: Path = BASELINES_DIR) -> list[str]:
    """Names of the fixed baseline architectures (one YAML file each)."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_baseline_names(names: Sequence[str] | None, folder: Path = BASELINES_DIR) -> list[str]:
    """The baselines asked for (all when ``names`` is empty); an unknown name is a ConfigError."""
    available = baseline_names(folder)
    if not available:
        raise ConfigError(f"no baseline architectures found in {folder}")
    wanted = list(dict.fromkeys(names)) if names else available
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(shown(n) for n in unknown[:5])}; "
                          f"available: {', '.join(available)}.")
    return wanted


def baselines(
    names: Sequence[str] | None, budget: Budget, shape: Shape, folder: Path = BASELINES_DIR
) -> list[Candidate]:
    """The fixed baselines (all, or ``names``) scaled to ``budget`` for ``shape`` with the budget solver."""
    from nas.sampling import fit
    from nas.space import load_target

    out = []
    for name in check_baseline_names(names, folder):
        target = load_target(str(folder / f"{name}.yaml"))
        solved = fit(target.single(), budget, shape)
        out.append(Candidate("baseline", name, solved.arch, solved.params, None))
    return out


def verify(candidates: Sequence[Candidate], shape: Shape) -> None:
    """Every candidate must fit in memory and count the parameters it was selected with (a trial: the search's)."""
    from nas.models.memory import check_memory

    for c in candidates:
        try:
            got = check_memory(c.arch, in_channels=shape.in_channels, num_classes=shape.num_classes,
                               resolution=shape.resolution).params
        except BudgetError as exc:
            raise BudgetError(f"{c.label} ({c.arch_hash}): {exc}") from None
        if got != c.params:
            raise RunStoreError(
                f"{c.label} ({c.arch_hash}) rebuilds with {got:,} parameters, but {c.params:,} were recorded at "
                f"search time. The model code or the data set's shape ({shape.in_channels} channels, "
                f"{shape.num_classes} classes) differs from the search's, so this would not be the network that "
                "was searched; retrain with the run's own data set and version of bottleneck-nas."
            )


def dedupe(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per architecture hash, first one wins (a trial's record beats a bare string)."""
    seen: dict[str, Candidate] = {}
    for c in candidates:
        seen.setdefault(c.arch_hash, c)
    return list(seen.values())

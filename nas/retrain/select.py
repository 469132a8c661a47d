"""Which networks to retrain: the Pareto front spread (top K), trial ids, architecture strings, fixed baselines.

Every candidate carries the parameter count it must rebuild with: the count recorded at search time for a
trial, the analytic count for a string or a baseline. ``verify_params`` fails loudly when a rebuild differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import ConfigError, RunStoreError, SpaceError
from nas.sampling import Shape
from nas.space.architecture import Architecture
from nas.space.budget import Budget

BASELINES_DIR = Path(__file__).resolve().parents[2] / "search_spaces" / "baselines"


@dataclass(frozen=True)
class Candidate:
    """One network to retrain and where it came from."""

    kind: str  # "trial", "baseline" or "arch"
    source: str  # the trial id, the baseline's name, or "" for an architecture string
    arch: Architecture
    params: int  # the count it must rebuild with
    record: dict[str, Any] | None = None  # the search record (proxy metrics), when there is one

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


def sort_front(front: Sequence[dict[str, Any]], objectives: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """Front records ordered along the front: best first objective first (ties: the next objectives, then id)."""

    def key(record: dict[str, Any]) -> tuple[float, ...]:
        out = []
        for o in objectives:
            value = float(record[o["name"]])
            out.append(-value if o["direction"] == "maximize" else value)
        return (*out, float(record["trial_id"]))

    return sorted(front, key=key)


def spread_front(
    front: Sequence[dict[str, Any]], objectives: Sequence[dict[str, str]], k: int
) -> list[dict[str, Any]]:
    """The top ``k`` of a front, spread along it: sorted by the first objective, evenly spaced indices."""
    ordered = sort_front(front, objectives)
    return [ordered[i] for i in spread_indices(len(ordered), k)]


def dedupe_front(front: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per architecture hash: the original (not reused, lowest trial id)."""
    best: dict[str, dict[str, Any]] = {}
    for r in sorted(front, key=lambda r: (bool(r.get("reused")), int(r["trial_id"]))):
        best.setdefault(str(r["arch_hash"]), r)
    return sorted(best.values(), key=lambda r: int(r["trial_id"]))


def read_front(run_dir: Path, config: dict[str, Any], records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Pareto front from the run's Optuna study, joined with the run store, without reused duplicates."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = config.get("storage") or f"sqlite:///{run_dir / 'study.db'}"
    if not config.get("storage") and not (run_dir / "study.db").is_file():
        raise RunStoreError(f"{run_dir} has no study.db, so its Pareto front cannot be read; use --trial or --arch.")
    try:
        study = optuna.load_study(study_name=str(config["name"]), storage=storage)
        best = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:  # no complete trial
        best = []
    except Exception as exc:  # sqlalchemy / KeyError: any failure means the study cannot be used
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunStoreError(f"cannot read the Optuna study {config.get('name')!r} of {run_dir}: {first}") from None
    by_id = {int(r["trial_id"]): r for r in records}
    front = [by_id[t.number] for t in best if t.number in by_id and by_id[t.number]["status"] == "complete"]
    return dedupe_front(front)


# ---- the three kinds of selection ----------------------------------------------------------------------------


def from_records(records: Sequence[dict[str, Any]]) -> list[Candidate]:
    """Candidates for search records (the architecture parsed from its string, the recorded count)."""
    out = []
    for r in records:
        arch = Architecture.parse(str(r["arch"]))
        if r.get("arch_hash") and arch.semantic_hash != r["arch_hash"]:
            raise RunStoreError(
                f"trial {r['trial_id']}: its architecture string hashes to {arch.semantic_hash}, but the run "
                f"recorded {r['arch_hash']}; the record was written by another version of bottleneck-nas."
            )
        out.append(Candidate("trial", str(r["trial_id"]), arch, int(r["params"]), dict(r)))
    return out


def by_trial_ids(records: Sequence[dict[str, Any]], ids: Sequence[int], run_dir: Path) -> list[Candidate]:
    """Candidates for explicit trial ids; an unknown id or a trial that did not complete is an error."""
    by_id = {int(r["trial_id"]): r for r in records}
    picked = []
    for i in dict.fromkeys(ids):
        if i not in by_id:
            known = f"{min(by_id)}..{max(by_id)}" if by_id else "none"
            raise RunStoreError(f"trial {i} is not in run {run_dir} (its trial ids are {known}); see trials.csv.")
        r = by_id[i]
        if r["status"] != "complete":
            raise RunStoreError(
                f"trial {i} of {run_dir} is {r['status']} ({r.get('reason') or 'no reason recorded'}); only complete "
                "trials can be retrained. Pass its architecture with --arch to train it anyway."
            )
        picked.append(r)
    return from_records(dedupe_front(picked))


def by_arch_strings(texts: Sequence[str], records: Sequence[dict[str, Any]], shape: Shape) -> list[Candidate]:
    """Candidates for architecture strings (taken as written); a string the run evaluated keeps its record."""
    from nas.models import count_params

    known = {}
    for r in records:
        if r["status"] == "complete":
            known.setdefault(str(r["arch_hash"]), r)
    out = []
    for text in dict.fromkeys(texts):
        try:
            arch = Architecture.parse(text)
        except SpaceError as exc:
            raise SpaceError(f"--arch {text!r} does not parse: {exc}") from None
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


def baselines(
    names: Sequence[str] | None, budget: Budget, shape: Shape, folder: Path = BASELINES_DIR
) -> list[Candidate]:
    """The fixed baselines (all, or ``names``) scaled to ``budget`` for ``shape`` with the budget solver."""
    from nas.sampling import fit
    from nas.space import load_target

    available = baseline_names(folder)
    if not available:
        raise ConfigError(f"no baseline architectures found in {folder}")
    wanted = list(dict.fromkeys(names)) if names else available
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; available: {', '.join(available)}.")
    out = []
    for name in wanted:
        target = load_target(str(folder / f"{name}.yaml"))
        solved = fit(target.single(), budget, shape)
        out.append(Candidate("baseline", name, solved.arch, solved.params, None))
    return out


def verify_params(candidates: Sequence[Candidate], shape: Shape) -> None:
    """Every candidate must count the parameters it was selected with (the search's count for a trial)."""
    from nas.models import count_params

    for c in candidates:
        got = count_params(c.arch, in_channels=shape.in_channels, num_classes=shape.num_classes)
        if got != c.params:
            raise RunStoreError(param_mismatch(c, got, shape))


def param_mismatch(c: Candidate, got: int, shape: Shape) -> str:
    """The message for a rebuild whose parameter count differs from the recorded one."""
    return (
        f"{c.label} ({c.arch_hash}) rebuilds with {got:,} parameters, but {c.params:,} were recorded at search "
        f"time. The model code or the data set's shape ({shape.in_channels} channels, {shape.num_classes} classes) "
        "differs from the search's, so this would not be the network that was searched; retrain with the run's "
        "own data set and version of bottleneck-nas."
    )


def dedupe(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per architecture hash, first one wins (a trial's record beats a bare string)."""
    seen: dict[str, Candidate] = {}
    for c in candidates:
        seen.setdefault(c.arch_hash, c)
    return list(seen.values())

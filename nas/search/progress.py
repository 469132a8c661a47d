"""The live progress of a search: counts per status, best values so far, and one line per finished trial."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from nas.objectives import Objective, interference_objective
from nas.run import TrialRecord
from nas.space import format_count


@dataclass
class SearchState:
    """Counts shown by the progress display (kept by the searcher, rebuilt from records on resume)."""

    total: int
    done: int = 0
    failed: int = 0
    pruned: int = 0
    reused: int = 0
    running: int = 0
    best_accuracy: float = float("nan")
    lowest_interference: float = float("nan")
    started: float = field(default_factory=time.monotonic)
    kept: int = 0  # records (reused ones included) kept from before a resume: not trained in this process
    kept_reused: int = 0
    # work of each trial id, for the ETA of runs whose trials differ in cost (an audit's fidelities); a trial
    # not named weighs 1, and with none named every trial weighs 1 (a search).
    work: dict[int, float] = field(default_factory=dict)
    work_done: float = 0.0  # final records, reused and kept ones included
    work_trained_here: float = 0.0  # final records this process trained

    def carry(self, records: list[TrialRecord], objectives: list[Objective]) -> None:
        """Count the records kept from before a resume; the ETA then rests on this process's trials alone."""
        for record in records:
            self.add(record, objectives)
        self.kept, self.kept_reused = self.done, self.reused
        self.work_trained_here = 0.0

    def eta(self, elapsed: float) -> float:
        """Seconds left: the work not yet done at the pace of this process's trials (NaN before the first)."""
        total = sum(self.work.values()) if self.work else self.total
        if self.trained_here <= 0 or self.work_trained_here <= 0:
            return float("nan")
        return elapsed / self.work_trained_here * max(0.0, total - self.work_done)

    @property
    def trained_here(self) -> int:
        """Trials finished by this process, reused records excluded."""
        return (self.done - self.kept) - (self.reused - self.kept_reused)

    def add(self, record: TrialRecord, objectives: list[Objective]) -> None:
        """Count one final trial record."""
        weight = self.work.get(record.trial_id, 1.0)
        self.work_done += weight
        self.work_trained_here += 0.0 if record.reused else weight
        self.done += 1
        self.failed += record.status == "failed"
        self.pruned += record.status == "pruned"
        self.reused += record.reused
        if not record.complete:
            return
        acc = record.finite("accuracy")
        if acc is not None and not acc <= self.best_accuracy:
            self.best_accuracy = acc
        inter = interference_objective(objectives)
        value = record.finite(inter.name) if inter else None
        if value is not None and not value >= self.lowest_interference:
            self.lowest_interference = value


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def clock(seconds: float) -> str:
    """m:ss, or h:mm:ss past an hour; – for an unknown time."""
    if seconds != seconds:  # NaN
        return "–"
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def progress_line(record: TrialRecord, st: SearchState, objectives: list[Objective]) -> str:
    """Two lines: the trial's outcome, then the run's counts, best values, elapsed time and ETA."""
    elapsed = time.monotonic() - st.started
    eta = st.eta(elapsed)
    inter = interference_objective(objectives)
    status = record.status + (" (reused)" if record.reused else "")
    if record.complete:
        what = f"acc {_fmt(record.finite('accuracy'))}" + (f" {inter.name} {_fmt(record.finite(inter.name))}"
                                                          if inter else "")
    else:
        what = record.reason[:90]
    best = f"best acc {_fmt(st.best_accuracy)}" + (f", lowest {inter.name} {_fmt(st.lowest_interference)}"
                                                   if inter else "")
    return (f"[{st.done}/{st.total}] trial {record.trial_id} {status}: {what} | "
            f"{format_count(record.params or 0)} params {record.arch}\n"
            f"    running {st.running}, failed {st.failed}, pruned {st.pruned}, reused {st.reused} | {best} | "
            f"elapsed {clock(elapsed)}, ETA {clock(eta)}")

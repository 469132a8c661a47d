"""A Ray Tune Searcher that drives an Optuna study by ask/tell.

Why not Ray's ``OptunaSearch``: our trials need the budget solver between the sampler
and the trainable, deduplication by semantic hash, failures told to the study with a
reason (a NaN or missing metric must never leave a trial RUNNING), and a run store that
is written before the study is told, so a hard kill loses nothing. The Pareto set is
always read from the study/run store, never from Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher

from nas.constraints import Constraints
from nas.errors import BudgetError
from nas.objectives import Objective
from nas.run import RunStore, TrialRecord
from nas.sampling import Shape, fit
from nas.search.progress import SearchState
from nas.search.trainable import record_from_result
from nas.space import Architecture, Budget, Space

MAX_INFEASIBLE_IN_A_ROW = 50


@dataclass
class Proposal:
    """An asked Optuna trial waiting for its result."""

    trial: Any
    config: dict[str, Any]


class StudySearcher(Searcher):
    """Asks the study for architectures, solves their budget, tells the study every outcome."""

    def __init__(
        self,
        *,
        study: Any,
        space: Space,
        budget: Budget | None,
        shape: Shape,
        store: RunStore,
        objectives: list[Objective],
        trial_config: dict[str, Any],
        fidelity_name: str,
        state: SearchState,
        on_record: Callable[[dict[str, Any], SearchState], None],
        prescreen: Any = None,
        constraints: Constraints | None = None,
    ) -> None:
        super().__init__()
        self.study = study
        self.space = space
        self.budget = budget
        self.shape = shape
        self.store = store
        self.objectives = objectives
        self.trial_config = trial_config
        self.fidelity_name = fidelity_name
        self.state = state
        self.on_record = on_record
        self.prescreen = prescreen  # a nas.search.prescreen.Prescreen (--prescreen), or None
        self.constraints = constraints  # the run's constraints (nas.constraints), or None (an older run)
        self.closed = False  # set on Ctrl-C: late callbacks must not record in-flight trials
        self.fatal: Exception | None = None  # an error inside a callback, re-raised by the runner
        self.live: dict[str, Proposal] = {}
        self.waiting: dict[str, list[Any]] = {}  # hash -> asked trials that duplicate a running one
        self.evaluated: dict[str, TrialRecord] = {}  # hash -> completed record at this fidelity
        for record in store.records():
            if record.complete and record.fidelity == fidelity_name:
                self.evaluated.setdefault(record.arch_hash, record)

    # ---- Ray's persistence: our state lives in the study and the run store ----------------
    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its search algorithm with the experiment; ours is rebuilt from the run folder instead."""
        return {"run_dir": str(self.store.root)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        import json

        with open(checkpoint_path, "w") as fh:
            json.dump({"run_dir": str(self.store.root), "resume": "nas search --resume --run <run_dir>"}, fh)

    def restore(self, checkpoint_path: str) -> None:
        from nas.errors import RunStoreError

        raise RunStoreError("this search resumes from its run folder: use `nas search --resume --run RUN`")

    # ---- Searcher API ----------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.closed:
            return Searcher.FINISHED
        infeasible = 0
        while self.state.done + self.state.running < self.state.total:
            trial = self.study.ask()
            try:
                solved = fit(self.space.suggest(trial), self.budget, self.shape)
            except BudgetError as exc:
                trial.set_user_attr("reason", f"infeasible: {exc}")
                self.study.tell(trial, state=_failed())
                infeasible += 1
                if infeasible >= MAX_INFEASIBLE_IN_A_ROW:
                    raise BudgetError(
                        f"{infeasible} proposals in a row could not meet the budget; last: {exc}"
                    ) from None
                continue
            broken = self.constraints.broken(solved.arch) if self.constraints and self.constraints.ceilings else None
            if broken is not None:  # not trained, not a trial of the run; the sampler learns the ceiling
                assert self.constraints is not None
                trial.set_user_attr("reason", f"above a ceiling: {broken}")
                trial.set_user_attr("arch", solved.arch.to_string())
                self.constraints.tell(self.study, trial, self.objectives, solved.arch, None, failed=False)
                infeasible += 1
                if infeasible >= MAX_INFEASIBLE_IN_A_ROW:
                    raise BudgetError(f"{infeasible} proposals in a row could not meet the budget or the ceilings; "
                                      f"last: {broken}")
                continue
            if self.prescreen is not None and not _fixed(trial):
                choice = self.prescreen.choose(trial.number, solved, self._taken())
                if choice.replaced:  # not a trial of the run: the pool's winner is enqueued and asked next
                    trial.set_user_attr("reason", f"prescreen: {choice.note}")
                    self.study.tell(trial, state=_failed())
                    self.study.enqueue_trial(choice.params, user_attrs={"prescreen_of": trial.number,
                                                                        "prescreen": choice.note})
                    continue
                trial.set_user_attr("prescreen", choice.note)
            arch_hash = solved.arch.semantic_hash
            trial.set_user_attr("arch", solved.arch.to_string())
            trial.set_user_attr("arch_hash", arch_hash)
            trial.set_user_attr("params", solved.params)
            if arch_hash in self.evaluated:
                self._reuse(trial, self.evaluated[arch_hash])
                continue
            if any(p.config["arch_hash"] == arch_hash for p in self.live.values()):
                self.waiting.setdefault(arch_hash, []).append(trial)
                self.state.running += 1
                continue
            config = {
                **self.trial_config,
                "trial_id": trial.number,
                "arch": solved.arch.to_string(),
                "arch_hash": arch_hash,
                "params": solved.params,
            }
            if isinstance(trial.user_attrs.get("rerun_of"), int):  # its checkpoint, if the cut trial left one
                config["resume_from"] = trial.user_attrs["rerun_of"]
            self.live[trial_id] = Proposal(trial, config)
            self.state.running += 1
            return config
        return Searcher.FINISHED if not self.live else None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Intermediate results (ASHA) need nothing here; the scheduler reads them."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        try:
            self._complete(trial_id, result, error)
        except Exception as exc:  # Tune would log and swallow it; keep it and stop the search instead
            self.fatal = exc
            self.closed = True

    def _complete(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        proposal = self.live.pop(trial_id, None)
        if proposal is None or self.closed:
            return
        self.state.running -= 1
        if not error and result is None:  # removed before it ran: give the slot back
            proposal.trial.set_user_attr("reason", "not started")
            self.study.tell(proposal.trial, state=_failed())
            return
        config = proposal.config
        base = {k: config.get(k) for k in ("trial_id", "arch", "arch_hash", "params", "seed")}
        base["fidelity"] = self.fidelity_name
        if error or not result or "status" not in result:
            data = {**base, "status": "failed", "reason": "trial process crashed (see the Ray log in ray/)"}
        elif result["status"] == "running":  # stopped early by the scheduler
            data = {**record_from_result(result), **base, "status": "pruned",
                    "reason": f"stopped by ASHA after {result['epochs']} epoch(s)"}
        else:
            data = {**record_from_result(result), **base}  # Ray adds its own trial_id to results: ours wins
        record = self._finish(proposal.trial, TrialRecord.from_dict(data, where=f"trial {base['trial_id']}'s result"))
        for waiting in self.waiting.pop(config["arch_hash"], []):
            self.state.running -= 1
            if record.complete:
                self._reuse(waiting, record)
            else:
                why = f"same architecture as trial {record.trial_id}: {record.reason}"
                self._finish(waiting, record.replace(trial_id=waiting.number, reused=True, reason=why))

    # ---- helpers -----------------------------------------------------------------------
    def _taken(self) -> set[str]:
        """Hashes of the networks trained at this fidelity or in flight (the pre-screen skips them)."""
        return set(self.evaluated) | {p.config["arch_hash"] for p in self.live.values()}

    def _reuse(self, trial: Any, source: TrialRecord) -> None:
        self._finish(trial, source.replace(trial_id=trial.number, reused=True, wall_s=0.0,
                                           reason=f"same architecture as trial {source.trial_id}"))

    def _finish(self, trial: Any, record: TrialRecord) -> TrialRecord:
        """Write the record, then tell the study (so a kill in between is repaired on resume)."""
        if record.complete:
            values = [record.value(o.name) for o in self.objectives]
            if any(record.finite(o.name) is None for o in self.objectives):
                record = record.replace(status="failed", reason=f"non-finite objective values {values}")
        self.store.write_record(record)
        tell_record(self.study, trial, record, self.objectives, self.constraints)
        if record.complete and not record.reused:
            self.evaluated.setdefault(record.arch_hash, record)
        self.state.add(record, self.objectives)
        self.on_record(record, self.state)
        return record


def tell_record(study: Any, trial: Any, record: TrialRecord, objectives: list[Objective],
                constraints: Constraints | None) -> None:
    """Tell the study a record's outcome: values when complete, PRUNED with the reason, and a failure as an
    infeasible COMPLETE trial (``constraints``; see nas.constraints) or FAIL (a run without them).

    ``trial`` is an ``optuna.Trial`` (from ``study.ask()``, or rebuilt for a RUNNING trial on resume).
    """
    import optuna

    if record.reason:
        trial.set_user_attr("reason", record.reason)
    trial.set_user_attr("reused", record.reused)
    values = [float(record.value(o.name)) for o in objectives] if record.complete else None
    if constraints is not None and record.status != "pruned":
        arch = Architecture.parse(record.arch)
        constraints.tell(study, trial, objectives, arch, values, failed=values is None)
    elif values is not None:
        study.tell(trial, values)
    elif record.status == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _fixed(trial: Any) -> bool:
    """An enqueued trial (a pre-screen winner, or a trial re-queued on resume): its network is already chosen."""
    attrs = trial.user_attrs
    return "prescreen_of" in attrs or "rerun_of" in attrs


def _failed() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL

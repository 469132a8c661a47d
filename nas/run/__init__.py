"""The run model: RunConfig (run.yaml), TrialRecord (one trial), RunStore (the only reader/writer of a run folder)."""

from __future__ import annotations

from nas.run.config import RUN_KINDS, SCHEMA_VERSION, RunConfig
from nas.run.record import STATUSES, TRIAL_COLUMNS, ZERO_COST_COLUMNS, TrialRecord, one_per_architecture, pareto_front
from nas.run.store import RunStore

__all__ = ["RUN_KINDS", "SCHEMA_VERSION", "STATUSES", "TRIAL_COLUMNS", "ZERO_COST_COLUMNS", "RunConfig", "RunStore",
           "TrialRecord", "one_per_architecture", "pareto_front"]

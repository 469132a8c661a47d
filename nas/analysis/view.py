"""A run as analysis sees it: the RunStore's config and its trial table (analysis reads runs only through RunStore)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nas.run import RunConfig, RunStore

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Run:
    """One run folder, read: its settings (RunConfig) and one row per trial record (``RunStore.table``)."""

    store: RunStore
    config: RunConfig
    trials: pd.DataFrame  # sorted by trial_id: TRIAL_COLUMNS (text as str, numbers as float), then extras

    @property
    def path(self) -> Path:
        """The run folder, relative to the working directory when it lies below it (as reports show it)."""
        try:
            return self.store.root.relative_to(Path.cwd())
        except ValueError:
            return self.store.root

    @property
    def name(self) -> str:
        return self.config.name or self.store.name

    @property
    def sampler(self) -> str:
        return self.config.sampler

    @property
    def label(self) -> str:
        return f"{self.name} ({self.sampler})"

    @property
    def fidelities(self) -> list[str]:
        """Fidelity names in order of first appearance."""
        return list(dict.fromkeys(self.trials["fidelity"]))


def load_run(run: Path | str, results_dir: Path | str = "results") -> Run:
    """Open a run (its folder, or its name under ``results_dir``) and read it; RunStoreError names what is wrong."""
    store = RunStore.open(run, results_dir)
    config = store.read_config()
    return Run(store, config, store.table())

"""What every run driver (`nas search`, `nas audit`, `nas study`) takes alike: the shared options, the
execution settings a resume may change, and the provenance run.yaml records (versions, git SHA, command)."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.run import RunStore

if TYPE_CHECKING:
    from nas.space import Budget
from nas.storage import mask_argv

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXECUTION = ("workers", "cpus_per_trial", "gpus_per_trial", "address")  # may change on --resume


@dataclass
class RunOptions:
    """Space, seed, data, execution and run-folder options of every driver (None: default, or the run's own)."""

    space_file: str | None = None
    budget: str | None = None
    tolerance: float | None = None
    divisor: int | None = None
    seed: int | None = None
    interference: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    resolution: int | None = None
    workers: int | None = None
    cpus_per_trial: int | None = None
    gpus_per_trial: float | None = None
    address: str | None = None
    run: str | None = None
    resume: bool = False
    results_dir: Path = field(default_factory=lambda: Path("results"))

    def given_budget(self) -> Budget | None:
        """--budget with --tolerance and --divisor (their defaults 0.05 and 8) as a Budget; None when not given."""
        from nas.space import Budget, parse_budget

        if self.budget is None:
            return None
        return Budget(parse_budget(self.budget), self.tolerance or 0.05, self.divisor or 8)

    def config_fields(self, store: RunStore) -> dict[str, Any]:
        """The RunConfig fields every new run fills alike: its name, data, execution and provenance."""
        return {"name": store.root.name, "created": dt.datetime.now().isoformat(timespec="seconds"),
                "dataset": self.dataset or "fashion-mnist", "data_dir": self.data_dir, "resolution": self.resolution,
                "workers": self.workers, "cpus_per_trial": self.cpus_per_trial,
                "gpus_per_trial": self.gpus_per_trial or 0.0, "address": self.address, "versions": versions(),
                "git_sha": git_sha(), "command": command_line()}


def git_sha() -> str | None:
    """The project's commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    import optuna
    import ray
    import torch

    import nas

    return {"nas": nas.__version__, "torch": str(torch.__version__), "optuna": optuna.__version__,
            "ray": ray.__version__, "python": platform.python_version()}


def command_line() -> str:
    """The command line as run.yaml records it, passwords masked."""
    return " ".join(mask_argv(sys.argv))

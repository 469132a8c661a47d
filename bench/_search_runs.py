"""Shared by the search benchmarks: run `nas search` in a subprocess and read back its run folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from nas.run import RunStore, TrialRecord

ROOT = Path(__file__).resolve().parents[1]


def run_search(results: Path, name: str, *args: str) -> float:
    """Run one search to the end; return its wall time in seconds (process start to exit)."""
    cmd = [sys.executable, "-m", "nas.cli", "search", "--results-dir", str(results), "--run", name, *args]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"search {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall


def trial_records(run: Path) -> list[TrialRecord]:
    """The run's trial records, read through the run store."""
    return RunStore(run).records()

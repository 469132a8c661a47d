"""A driver killed mid-run, for the kill-and-resume tests of the designed runs (audit, study, compare)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

KILL_WAIT_S = 300.0  # how long to wait for the records before giving up


def kill_after(cmd: list[str], run: Path, records: int, *, cwd: Path) -> None:
    """Start ``cmd`` as its own process group; SIGKILL it once ``run`` holds ``records`` trial records.

    Raises AssertionError when the command ends first or the records do not appear in time.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, "RAY_AUTH_MODE": "disabled"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline:
            if len(list((run / "trials").glob("*/metrics.json"))) >= records:
                break
            if proc.poll() is not None:
                raise AssertionError("the run ended before it could be killed")
            time.sleep(0.2)
        else:
            raise AssertionError(f"no {records} records in {KILL_WAIT_S:.0f} s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

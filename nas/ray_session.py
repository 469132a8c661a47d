"""One Ray session for every driver (search, audit, study, retrain): local by default, or a cluster's address.

A local run always starts its own local Ray (``address="local"``), whatever cluster files another Ray
left on the machine; ``--address`` connects to an existing cluster after a TCP probe, so an
unreachable address fails in seconds instead of after Ray's minutes of retries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from nas.errors import ConfigError, shown

CONNECT_TIMEOUT_S = 5.0


def prepare_environment() -> None:
    """Environment Ray Tune reads at import: no auth for local runs, our own Ctrl-C handling, quiet output."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C stops at once; in-flight trials re-run on resume
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # failed trials report no accuracy
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Start (or join) Ray for the duration of the block; shut it down afterwards if this block started it."""
    import logging

    prepare_environment()
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        check_reachable(address)
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot start or reach Ray at {shown(address or 'local')}: {first[:200]}") from None
    try:
        yield
    finally:
        ray.shutdown()


def cluster_resources() -> tuple[int, float]:
    """(CPUs, GPUs) of the Ray cluster this process is connected to."""
    import ray

    resources = ray.cluster_resources()
    return int(resources.get("CPU", 1)), float(resources.get("GPU", 0))


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast on a malformed or unreachable cluster address (ray.init would retry for minutes)."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {shown(address)} is not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {shown(address)}: {exc.strerror or exc}") from None

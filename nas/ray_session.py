"""One Ray session for every driver (search, audit, study, retrain): local by default, or a cluster's address.

* A local run always starts its own local Ray (``address="local"``), whatever cluster files another Ray
  left on the machine (``/tmp/ray/ray_current_cluster``) and whatever cluster runs beside it.
* ``--address`` is probed before anything is created: a TCP connection, then the HTTP/2 greeting every
  gRPC server sends (a PostgreSQL or web port fails here, in milliseconds), then Ray's own cluster-ID
  request to the GCS in a child process with a time limit. Each failure is one ConfigError line within
  about 15 s, instead of ``ray.init`` retrying for minutes.
* SIGTERM (what ``timeout``, ``kill`` and cluster schedulers send) is turned into the same
  KeyboardInterrupt as Ctrl-C, also while Ray runs (``ray.init`` installs its own handler, which exits
  at once): drivers stop as on Ctrl-C, leave a resumable run and exit with 128 + the signal number.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nas.errors import ConfigError, shown

CONNECT_TIMEOUT_S = 5.0
GCS_TIMEOUT_S = 10.0
_PROBED: set[str] = set()
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS
_GCS_PROBE = """
import sys
try:
    import ray._raylet as r
    print("cluster", r.GcsClient(address=sys.argv[1]).cluster_id.hex())
except Exception as exc:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and ln.strip().lower() != "rpc error:"]
    print("refused", type(exc).__name__ + (": " + lines[0][:160] if lines else ""))
"""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM) received while a driver runs; handled as Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


_received: list[int] = []  # the termination signals received inside terminate_as_interrupt blocks, latest last


def exit_code(exc: BaseException) -> int:
    """The exit status of a driver stopped by ``exc``: 128 + the signal (130 for Ctrl-C, 143 for SIGTERM).

    Ray's C++ calls turn any exception raised by a signal handler into a plain KeyboardInterrupt, so the
    signal is also remembered when it arrives.
    """
    signum = getattr(exc, "signum", None) or (_received[-1] if _received else signal.SIGINT)
    return 128 + int(signum)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread, and
    Ctrl-C its KeyboardInterrupt as always; :func:`exit_code` tells them apart."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        _received.append(signum)
        raise Terminated(signum) if signum != signal.SIGINT else KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def prepare_environment() -> None:
    """Environment Ray Tune reads at import: no auth for local runs, our own Ctrl-C handling, quiet output, no
    loggers but those a run asks for (nas.search.tracking)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C stops at once; in-flight trials re-run on resume
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # failed trials report no accuracy
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # no CSV/JSON/TensorBoard files unless --tracking asks
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def is_local(address: str | None) -> bool:
    return not address or address == "local"


@contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Start (or join) Ray for the duration of the block; shut it down afterwards if this block started it.

    SIGTERM raises :class:`Terminated` inside the block (``ray.init`` replaces any earlier handler).
    """
    import logging

    prepare_environment()
    import ray

    if ray.is_initialized():
        with terminate_as_interrupt():
            yield
        return
    if not is_local(address):
        check_reachable(address)  # type: ignore[arg-type]
    try:
        if not is_local(address):
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot start or reach Ray at {shown(address or 'local')}: {first[:200]}") from None
    try:
        with terminate_as_interrupt():
            yield
    finally:
        ray.shutdown()


def cluster_resources() -> tuple[int, float]:
    """(CPUs, GPUs) of the Ray cluster this process is connected to."""
    import ray

    resources = ray.cluster_resources()
    return int(resources.get("CPU", 1)), float(resources.get("GPU", 0))


def trial_slots(cpus_per_trial: int | None, workers: int | None, cpus: int) -> tuple[int, int]:
    """(CPUs per trial, concurrent trials) on a cluster of ``cpus``: given values win; by default 2 CPUs a trial,
    or the CPUs shared among ``workers`` when only the number of trials at a time is given."""
    per = cpus_per_trial or (max(1, cpus // workers) if workers else min(2, cpus))
    if per > cpus:
        raise ConfigError(f"--cpus-per-trial {per} is more than the {cpus} CPU(s) Ray has")
    return per, workers or max(1, cpus // per)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, with one line, on a cluster address that is malformed, unreachable or not Ray's.

    HOST:PORT (a GCS) gets all three probes; ray://HOST:PORT (Ray Client) the first two; ``auto`` is
    resolved as Ray would (RAY_ADDRESS, then the last ``ray start`` on this machine) and then probed.
    ``local`` means a local Ray and needs no probe.
    """
    if is_local(address) or address in _PROBED:
        return
    target = _resolve_auto() if address == "auto" else address
    client = target.startswith("ray://")
    hostport = target.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {shown(address)} is not HOST:PORT (or ray://HOST:PORT, auto or local)")
    host = host.strip("[]")
    _probe_grpc(address, host, int(port), timeout)
    if not client:
        _probe_gcs(address, f"{host}:{port}")
    _PROBED.add(address)


def _resolve_auto() -> str:
    prepare_environment()
    from ray._private import services

    try:
        found = services.canonicalize_bootstrap_address("auto")
    except Exception as exc:  # Ray raises ConnectionError or ValueError here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--address auto: no running Ray cluster found ({first[:160]}); start one with "
                          "`ray start --head` or give HOST:PORT") from None
    if not found:
        raise ConfigError("--address auto: no running Ray cluster found; start one with `ray start --head` or give "
                          "HOST:PORT")
    return found


def _probe_grpc(address: str, host: str, port: int, timeout: float) -> None:
    """TCP connect, then the HTTP/2 client greeting: a gRPC server answers with a SETTINGS frame."""
    import socket

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {shown(address)}: {exc.strerror or exc}") from None
    try:
        sock.settimeout(timeout)
        sock.sendall(_HTTP2_PREFACE)
        answer = _read(sock, 9)
    except OSError:
        answer = b""
    finally:
        sock.close()
    if len(answer) < 9 or answer[3] != 0x04:  # the frame type of SETTINGS
        raise ConfigError(f"{shown(address)} answers, but not as a Ray cluster: it does not speak gRPC (is it another "
                          "service's port? `ray start --head` prints the cluster's address, port 6379 by default)")


def _read(sock: object, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))  # type: ignore[attr-defined]
        if not chunk:
            break
        data += chunk
    return data


def _probe_gcs(address: str, hostport: str) -> None:
    """Ask the GCS for its cluster ID in a child process that cannot outlive GCS_TIMEOUT_S."""
    env = {**os.environ, "RAY_gcs_rpc_server_connect_timeout_s": "3",
           "RAY_gcs_rpc_server_reconnect_timeout_s": "3"}
    env.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        done = subprocess.run([sys.executable, "-c", _GCS_PROBE, hostport], capture_output=True, text=True, env=env,
                              timeout=GCS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{shown(address)} speaks gRPC but gave no Ray cluster ID within {GCS_TIMEOUT_S:g} s: is it "
                          "a Ray head's GCS port (6379 by default; Ray Client addresses start with ray://)?") from None
    answer = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if not answer.startswith("cluster "):
        why = answer.removeprefix("refused ") or f"the probe ended with status {done.returncode}"
        raise ConfigError(f"{shown(address)} speaks gRPC but does not answer as a Ray cluster's GCS ({why}); give "
                          "the address `ray start --head` printed (port 6379 by default)")

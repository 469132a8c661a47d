"""One driver at a time: a lock file that names its owner (host, pid, since when, command), held with flock.

The kernel releases a flock when its holder dies, however it dies, so a lock left by a killed driver is
free at once; the file still names the dead owner, and the next driver takes it over with a note. A
lock whose named owner may still be alive is never taken over: one on this host whose pid runs, or
one written on another host (its pid cannot be checked from here), is refused with the owner named
and the file to delete once the user knows that driver is gone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from nas.errors import RunStoreError, shown


@dataclass(frozen=True)
class Owner:
    """Who holds (or held) a lock."""

    host: str
    pid: int
    since: str
    command: str = ""

    @classmethod
    def me(cls, command: str = "") -> Owner:
        return cls(socket.gethostname(), os.getpid(), dt.datetime.now().isoformat(timespec="seconds"), command)

    def describe(self) -> str:
        what = f"pid {self.pid} on host {self.host}, since {self.since}"
        return what + (f" ({shown(self.command, 160)})" if self.command else "")

    def dead(self) -> bool:
        """True only when the owner is known to be gone: same host and no such process (or this very process,
        which holds no lock it has not taken)."""
        if self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False


@contextmanager
def hold_lock(path: Path, what: str, command: str = "") -> Iterator[str | None]:
    """Hold the lock at ``path`` for the block; yield a note when a dead owner's lock was taken over.

    ``what`` names the locked thing in messages ("run results/x"). A lock held by a live driver is a
    RunStoreError naming that driver. The folder must exist; the file is removed when the block ends.
    """
    path = Path(path)
    fd, previous = _acquire(path, what)
    note = None
    if previous is not None:
        if not previous.dead():
            os.close(fd)  # the file stays as it is: it names a driver we cannot prove gone
            where = "another host" if previous.host != socket.gethostname() else "this host"
            raise RunStoreError(
                f"{what} is locked by {previous.describe()}, on {where}, which may still be running; if that "
                f"driver is gone, delete {path} and start again")
        note = f"note: took over the lock of {what} left by {previous.describe()}, which is no longer running"
    try:
        _write_owner(fd, Owner.me(command))
        yield note
    finally:
        with contextlib.suppress(OSError):
            if _same_file(path, fd):
                path.unlink()
        os.close(fd)  # releases the flock


def read_owner(path: Path) -> Owner | None:
    """The owner a lock file names, or None (no file, empty, or unreadable)."""
    try:
        return _parse(Path(path).read_bytes())
    except OSError:
        return None


def _acquire(path: Path, what: str) -> tuple[int, Owner | None]:
    """(fd holding the flock on the file now at ``path``, the owner the file named before), or RunStoreError."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunStoreError(f"{what} is in use by another driver: {_holder(path)}; wait for it to end, or "
                                "stop it (Ctrl-C), then resume") from None
        if _same_file(path, fd):  # else its holder removed it between our open and our flock: open the new one
            return fd, _parse(os.pread(fd, 65536, 0))
        os.close(fd)


def _holder(path: Path) -> str:
    for _ in range(5):  # the holder writes its name right after taking the lock
        owner = read_owner(path)
        if owner is not None:
            return owner.describe()
        time.sleep(0.05)
    return f"an owner that has not written its name in {path} yet"


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False


def _write_owner(fd: int, owner: Owner) -> None:
    data = (json.dumps(asdict(owner)) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _parse(data: bytes) -> Owner | None:
    try:
        raw = json.loads(data.decode("utf-8"))
        return Owner(str(raw["host"]), int(raw["pid"]), str(raw["since"]), str(raw.get("command", "")))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None

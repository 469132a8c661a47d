"""A data folder a user names: tell "does not exist", "is a file", "permission denied" apart, and fit in memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nas.errors import DataError
from nas.space.paths import display_path, path_problem

MISSING = "does not exist"


def folder_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a readable folder (``"does not exist"``, ``"is a file, not a folder"``, …), or None."""
    problem = path_problem(path)
    if problem is not None:
        return f"is not a usable path ({problem})"
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    except PermissionError:
        return "cannot be reached: permission denied"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return "is a file, not a folder"
    if not stat.S_ISDIR(mode):
        return "is not a folder"
    try:
        with os.scandir(path):
            pass
    except PermissionError:
        return "cannot be listed: permission denied"
    except OSError as exc:
        return f"cannot be listed ({exc.strerror or exc})"
    return None


def check_folder(path: str | Path, what: str, hint: str = "") -> Path:
    """``path`` as a Path when it is a readable folder; otherwise a DataError naming ``what`` and the reason."""
    problem = folder_problem(path)
    if problem is not None:
        raise DataError(f"{what} {display_path(path)} {problem}{'; ' + hint if hint else '.'}")
    return Path(path)


def check_image_memory(images: int, channels: int, resolution: int, what: str, *, bytes_per_value: int = 1) -> None:
    """Refuse, before allocating, ``images`` x ``channels`` x ``resolution``² values that cannot fit in memory."""
    from nas.models.memory import available_memory, format_bytes

    needed = images * channels * resolution * resolution * bytes_per_value
    limit = available_memory()
    if needed > limit:
        raise DataError(
            f"{what}: {images:,} images of {channels}x{resolution}x{resolution} need {needed:,} bytes "
            f"({format_bytes(needed)}), more than the {limit:,} bytes ({format_bytes(limit)}) of memory here; "
            "use a lower resolution or fewer images."
        )

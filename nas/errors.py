"""Every failure a user can cause is a NASError; the CLI prints it and exits 2."""

from __future__ import annotations


class NASError(Exception):
    """A user-facing failure with a one-paragraph message (no traceback shown)."""


class SpaceError(NASError):
    """A search-space file or architecture string is malformed or invalid."""


class BudgetError(NASError):
    """A budget is malformed, or no architecture can meet it."""


class DataError(NASError):
    """A data set is missing, corrupt or unusable."""


class ConfigError(NASError):
    """A command-line option or preset is unknown or inconsistent."""


class RunStoreError(NASError):
    """A run directory is missing, unreadable or inconsistent."""


class CheckpointError(NASError):
    """A checkpoint is corrupt or belongs to a different architecture."""


class Diverged(NASError):
    """Training produced a non-finite loss; carries the step and the loss."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"training diverged at step {step}: loss is {loss}")
        self.step = step
        self.loss = loss


class NonFiniteMetric(NASError):
    """A metric (an objective) came out NaN or infinite."""

"""bottleneck-nas: neural-architecture search for tiny vision networks."""

from __future__ import annotations

__version__ = "0.1.0"

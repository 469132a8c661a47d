"""PNG plots of an analysis (matplotlib's object API on the Agg canvas; no pyplot, no global state)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nas.analysis.features import MIXED, NOT_APPLICABLE
from nas.analysis.stats import Importances, ecdf
from nas.atomic import atomic_write_bytes
from nas.objectives import Objective
from nas.space.vocabulary import FAMILIES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
_OTHER_COLOR = "#7f7f7f"


def family_colors() -> dict[str, str]:
    """A fixed colour per block family (tab10), grey for mixed networks."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colors = {name: _hex(cmap(i)) for i, name in enumerate(FAMILIES)}
    colors[MIXED] = _OTHER_COLOR
    colors[NOT_APPLICABLE] = _OTHER_COLOR
    return colors


def _hex(rgba: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])


def _figure(width: float, height: float, **subplots: object) -> tuple[Figure, object]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots)  # type: ignore[arg-type]
    return fig, axes


def save(fig: Figure, path: Path) -> Path:
    """Render to PNG in memory, then write atomically (temp file + rename)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _axis_label(obj: Objective) -> str:
    arrow = "↑" if obj.maximize else "↓"
    return f"{obj.name} ({arrow} better)"


def pareto_plot(
    path: Path,
    values: np.ndarray,
    families: Sequence[str],
    on_front: np.ndarray,
    objectives: Sequence[Objective],
    title: str,
) -> Path:
    """Scatter of objective 0 (y) against objective 1 (x), coloured by family; the front as a step line."""
    fig, ax = _figure(7.5, 5.5)
    y_obj, x_obj = objectives[0], objectives[1]
    x, y = values[:, 1], values[:, 0]
    families = np.asarray(families)
    colors = family_colors()
    for fam in dict.fromkeys([*FAMILIES, MIXED, *families]):
        mask = families == fam
        if not mask.any():
            continue
        ax.scatter(
            x[mask & ~on_front],
            y[mask & ~on_front],
            s=14,
            alpha=0.45,
            color=colors.get(fam, _OTHER_COLOR),
            linewidths=0,
        )
        ax.scatter(
            x[mask & on_front],
            y[mask & on_front],
            s=46,
            color=colors.get(fam, _OTHER_COLOR),
            edgecolors="black",
            linewidths=0.8,
            zorder=3,
        )
        ax.scatter([], [], s=30, color=colors.get(fam, _OTHER_COLOR), label=f"{fam} ({int(mask.sum())})")
    if len(objectives) == 2 and on_front.any():
        lx = x_obj.to_loss(x[on_front])
        ly = y_obj.to_loss(y[on_front])
        order = np.lexsort((ly, lx))
        lx, ly = lx[order], ly[order]
        sx = np.repeat(lx, 2)[1:]
        sy = np.repeat(ly, 2)[:-1]
        ax.plot(x_obj.from_loss(sx), y_obj.from_loss(sy), color="black", lw=1.2, zorder=2, label="Pareto front")
    elif on_front.any():
        ax.scatter([], [], s=46, facecolors="none", edgecolors="black", label="Pareto front (all objectives)")
    ax.set_xlabel(_axis_label(x_obj))
    ax.set_ylabel(_axis_label(y_obj))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title="block family (trials)", fontsize=8, title_fontsize=8, loc="best")
    return save(fig, path)


def hypervolume_plot(path: Path, series: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str) -> Path:
    """Hypervolume against trials evaluated, one step line per run."""
    fig, ax = _figure(7.5, 4.8)
    for label, x, y in series:
        if len(x):
            ax.step(x, y, where="post", lw=1.6, label=f"{label}: {y[-1]:.4f}")
    ax.set_xlabel("trials evaluated (all statuses, this fidelity)")
    ax.set_ylabel("hypervolume of the front so far")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right", title="run (sampler): final", title_fontsize=8)
    return save(fig, path)


def edf_plot(
    path: Path, choice: str, column: np.ndarray, order: Sequence[str], metrics: Mapping[str, np.ndarray]
) -> Path:
    """pycls-style EDFs: for each value of ``choice``, the cumulative share of trials below each metric value."""
    fig, axes = _figure(5.0 * len(metrics), 4.2, ncols=len(metrics), squeeze=False)
    colors = family_colors() if choice == "block" else {}
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    for ax, (name, vals) in zip(axes[0], metrics.items(), strict=True):
        for i, value in enumerate(order):
            mask = column == value
            x, f = ecdf(vals[mask])
            if len(x) == 0:
                continue
            color = colors.get(value, _hex(cmap(i % 10)))
            xs = np.concatenate([[x[0]], x])
            fs = np.concatenate([[0.0], f])
            ax.step(xs, fs, where="post", color=color, lw=1.5, label=f"{value} (n={len(x)}, med {np.median(x):.3f})")
        ax.set_xlabel(name)
        ax.set_ylabel("cumulative share of trials")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title=choice, title_fontsize=8, loc="lower right")
    fig.suptitle(f"EDFs by {choice}")
    return save(fig, path)


def importance_plot(path: Path, imp: Importances) -> Path:
    """Horizontal bars: importance of each choice, one bar per objective."""
    objectives = list(imp.values)
    params = list(dict.fromkeys(p for o in objectives for p in imp.values[o]))
    params.sort(key=lambda p: sum(imp.values[o].get(p, 0.0) for o in objectives))
    fig, ax = _figure(7.0, 0.45 * max(len(params), 3) + 1.4)
    height = 0.8 / max(len(objectives), 1)
    pos = np.arange(len(params))
    for i, obj in enumerate(objectives):
        ax.barh(
            pos + ((len(objectives) - 1) / 2 - i) * height,  # first objective on top
            [imp.values[obj].get(p, 0.0) for p in params],
            height=height,
            label=obj,
        )
    ax.set_yticks(pos, params)
    ax.set_xlabel("importance (normalised: sums to 1 per objective)")
    ax.set_title(f"Design-choice importances — {imp.evaluator.split(' (')[0]}")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)

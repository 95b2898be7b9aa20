"""The report charts' one grammar, so none can mislead: better is green and worse red whatever the measure's
sign, unchanged is a visible grey mark (never an invisible zero-width bar), every bar carries its value and
its n, a zero line, and labels are whole (wrapped at ``/``, never cut). Pure matplotlib (Agg), written
atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_path

BETTER, WORSE, SAME, NEW = "tab:green", "tab:red", "tab:grey", "tab:blue"
KEY = "green: better · red: worse · grey: unchanged"


@dataclass(frozen=True)
class Bar:
    """One row of a signed bar chart: ``value`` on the measure's own scale, ``better`` whether it is good news
    (None: neither, e.g. unchanged), ``n`` what it was measured on."""

    label: str
    value: float
    better: bool | None
    n: int | None = None
    colour: str = ""  # overrides the better/worse/same colour (a "new" leaf)


def wrap_label(text: str, width: int = 38) -> str:
    """``text`` over several lines, broken after ``/`` where it can be (hard-broken only inside a longer
    part); no character is dropped."""
    lines, line = [], ""
    for part in text.replace("/", "/\0").split("\0"):
        while len(part) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(part[:width])
            part = part[width:]
        if len(line) + len(part) > width and line:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line] if line else lines)


def colour_of(bar: Bar) -> str:
    return bar.colour or (SAME if bar.better is None else BETTER if bar.better else WORSE)


def signed_bars(ax: Any, bars: Sequence[Bar], xlabel: str, title: str) -> None:
    """Horizontal bars from a zero line, each annotated "value (n = N)"; a zero value is a grey diamond."""
    labels = [wrap_label(b.label) for b in bars]
    ys = range(len(bars))
    ax.barh(ys, [b.value for b in bars], color=[colour_of(b) for b in bars], height=0.6)
    zero = [y for y, b in zip(ys, bars, strict=True) if b.value == 0]
    if zero:
        ax.scatter([0] * len(zero), zero, marker="D", color=SAME, zorder=3, s=28)
    ax.axvline(0, color="black", lw=0.8)
    span = max((abs(b.value) for b in bars), default=0.0) or 1.0
    ax.set_xlim(min(min(b.value for b in bars), 0) - 0.45 * span, max(max(b.value for b in bars), 0) + 0.45 * span)
    for y, b in zip(ys, bars, strict=True):
        note = f"{b.value or 0.0:+.3f}" + ("" if b.n is None else f" (n = {b.n})")
        ax.annotate(note, (b.value, y), xytext=(4 if b.value >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if b.value >= 0 else "right", va="center", fontsize=8)
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)


def bar_figure(bars: Sequence[Bar], target: Path, xlabel: str, title: str, key: str = KEY) -> Path | None:
    """One :func:`signed_bars` chart sized to its rows and labels; ``None`` when there is nothing to draw."""
    if not bars:
        return None
    plt = pyplot()
    lines = sum(wrap_label(b.label).count("\n") + 1 for b in bars)
    fig, ax = plt.subplots(figsize=(10, 0.32 * lines + 0.3 * len(bars) + 1.6), dpi=100)
    signed_bars(ax, bars, xlabel, title)
    return save(fig, target, key)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, target: Path, key: str = KEY) -> Path:
    """``fig`` as a PNG at ``target`` (atomically: a reader never sees half a file), closed; ``key``: what the
    colours mean, printed under it ("" for none)."""
    if key:
        fig.text(0.01, 0.005, key, fontsize=8, color="dimgrey", va="bottom")
    fig.tight_layout(rect=(0, 0.04 if key else 0, 1, 1))
    with atomic_path(Path(target)) as tmp:
        fig.savefig(tmp, format="png")
    pyplot().close(fig)
    return Path(target)

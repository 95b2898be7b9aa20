"""What a run leaves for people: ``metrics.jsonl`` (one line per optimizer step), ``summary.json``
(held-out losses and forgetting across phases) and ``loss.png``.

The metrics log is append-only during a run; on ``--resume`` it is cut back to the checkpoint's step so a
resumed run's log equals an uninterrupted one's (a line half-written by a kill is dropped too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_write_json, atomic_write_jsonl


class MetricsLog:
    """``metrics.jsonl`` under the output folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        out = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    break  # a line cut by a kill: it and anything after it are redone
        return out

    def truncate_to(self, global_step: int) -> None:
        """Keep the lines of steps up to ``global_step`` (the resumed checkpoint's)."""
        atomic_write_jsonl(self.path, [r for r in self.records() if r.get("global_step", 0) <= global_step])

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()


def forgetting(heldout: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """``forgetting[after][of] = heldout[after][of] - heldout[of][of]`` for every measured pair."""
    out: dict[str, dict[str, float]] = {}
    for after, row in heldout.items():
        out[after] = {of: loss - heldout[of][of] for of, loss in row.items() if of in heldout and of in heldout[of]}
    return out


def write_summary(path: Path, phases: dict[str, dict[str, Any]], heldout: dict[str, dict[str, float]]) -> dict:
    summary = {"phases": phases, "heldout_loss": heldout, "forgetting": forgetting(heldout)}
    atomic_write_json(path, summary)
    return summary


def plot_losses(path: Path, records: list[dict[str, Any]], heldout: dict[str, dict[str, float]],
                references: Mapping[str, float] | None = None) -> None:
    """Training loss per optimizer step, coloured by phase, with held-out losses at each phase's end and
    ``references`` (label -> loss, e.g. the parent's held-out loss) as dashed horizontal lines."""
    from labrador.trainer.charts import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=100)
    ends: dict[str, int] = {}
    for phase in dict.fromkeys(r["phase"] for r in records):
        rows = [r for r in records if r["phase"] == phase]
        ax.plot([r["global_step"] for r in rows], [r["loss"] for r in rows], label=f"{phase} (train)", lw=1)
        for term, what in (("loss_ce", "reply loss"), ("loss_pred", "KD loss")):  # distillation: its terms apart
            if any(term in r for r in rows):
                ax.plot([r["global_step"] for r in rows if term in r], [r[term] for r in rows if term in r],
                        label=f"{phase} {what}", lw=0.8, ls="--")
        ends[phase] = rows[-1]["global_step"]
    for after, row in heldout.items():
        for of, loss in row.items():
            if after in ends:
                ax.scatter([ends[after]], [loss], marker="o", s=20, zorder=3)
                ax.annotate(f"{of}", (ends[after], loss), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for (label, loss), style in zip((references or {}).items(), ("--", ":", "-."), strict=False):
        ax.axhline(loss, color="black", lw=1, ls=style, label=f"{label}: {loss:.3f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean per token; lower is better)")
    dots = "; dots: held-out loss of each phase after each phase" if heldout else ""
    ax.set_title(f"training loss (n = {len(records)} steps){dots}", fontsize=10)
    ax.grid(alpha=0.3)
    if records:
        ax.legend(fontsize=8)
    save(fig, Path(path), key="")


def progress_bar(show: bool, phase: str, total: int, first: int) -> Callable[[int | None, dict | None], None]:
    """``update(k, record)`` after step ``k`` (loss and tokens/s from its record); ``update(None, None)`` ends it.
    A bar on a terminal, a line every 30 s in a log (:mod:`labrador.validators.progress`)."""
    from labrador.validators.progress import Progress

    bar = Progress(f"training {phase}", total, start=first, show=show).__enter__()

    def update(k: int | None, rec: dict | None) -> None:
        if k is None:
            bar.__exit__(None, None, None)
            return
        bar.update(k, f"loss {rec['loss']:.4f}, {rec['tokens_per_s']:.0f} tok/s" if rec else "")

    return update

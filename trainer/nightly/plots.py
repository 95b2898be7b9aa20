"""The night's PNGs, in the one chart grammar of :mod:`labrador.trainer.charts` (better green, worse red, a
zero line, whole labels, every value with its n): the per-leaf held-out gain, forgetting per earlier night
beside the worst forgetting night by night (tonight included), and the training loss against the parent's
held-out loss on tonight's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..charts import BETTER, SAME, WORSE, Bar, bar_figure, pyplot, save, signed_bars


def gain_chart(run_dir: Path, night: str, leaves: dict[str, Any], pairs: dict[str, int]) -> Path | None:
    """Per-leaf ref_nll gain on the parent (> 0: learnt), with each leaf's held-out pairs (its n)."""
    bars = []
    for leaf, v in sorted(leaves.items()):
        delta = (v.get("ref_nll") or {}).get("delta")
        if delta is not None:
            gain = -float(delta)
            bars.append(Bar(leaf, gain, None if gain == 0 else gain > 0, pairs.get(leaf)))
    return bar_figure(bars, run_dir / "heldout_gain.png",
                      "ref_nll gain on the parent (nats/token; > 0: better)", f"{night}: held-out seeds, per leaf")


def forgetting_chart(run_dir: Path, record: dict[str, Any], runs: list[dict[str, Any]]) -> Path | None:
    """Left: tonight's held-out loss rise on each earlier night's data (< 0: it improved); right: the worst
    rise of every night so far, tonight included."""
    m = record.get("metrics", {})
    forgetting = {k: v for k, v in (m.get("forgetting") or {}).items() if v is not None}
    sizes = m.get("sizes") or {}
    nights = {r["id"]: r for r in runs if r.get("metrics")}
    nights[record["id"]] = record  # tonight, whether or not the registry lists it yet
    history = []
    for rid in sorted(nights):
        values = [v for v in (nights[rid].get("metrics", {}).get("forgetting") or {}).values() if v is not None]
        if values:
            history.append((rid, max(values)))
    if not forgetting and not history:
        return None
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(4.0, 0.5 * len(forgetting) + 2)), dpi=100)
    bars = [Bar(name, float(v), None if v == 0 else v < 0, sizes.get(name)) for name, v in sorted(forgetting.items())]
    if bars:
        signed_bars(left, bars, "held-out loss rise, nats/token (< 0: better)",
                    f"{record['id']}: forgetting per earlier night")
    else:
        left.set_axis_off()
        left.set_title(f"{record['id']}: no earlier night to compare", fontsize=10)
    if history:
        xs = range(len(history))
        right.plot(xs, [h[1] for h in history], color=SAME, lw=1, zorder=1)
        right.scatter(xs, [h[1] for h in history], zorder=2,
                      color=[WORSE if h[1] > 0 else BETTER if h[1] < 0 else SAME for h in history])
        right.set_xticks(list(xs), [h[0] for h in history], rotation=45, ha="right", fontsize=8)
        right.axhline(0, color="black", lw=0.8)
        right.set_ylabel("worst held-out loss rise (nats/token; > 0: worse)")
    right.set_title(f"worst forgetting, night by night (n = {len(history)} nights)", fontsize=10)
    return save(fig, run_dir / "forgetting.png")


def loss_chart(run_dir: Path, record: dict[str, Any]) -> Path | None:
    """Tonight's training loss per step, with the parent's and the new model's held-out loss on tonight's data
    as reference lines (what the gate compared)."""
    from ..train.report import MetricsLog, plot_losses

    rows = MetricsLog(run_dir / "train" / "metrics.jsonl").records()
    if not rows:
        return None
    m = record.get("metrics", {})
    held, n = m.get("heldout_loss") or {}, (m.get("sizes") or {}).get("tonight")
    refs = {f"{who} model, tonight's held-out (n = {n})": held.get(key)
            for who, key in (("parent", "tonight_parent"), ("new", "tonight"))}
    target = run_dir / "loss.png"
    plot_losses(target, rows, {}, references={k: v for k, v in refs.items() if v is not None})
    return target


def plots_of(run_dir: Path, record: dict[str, Any], runs: list[dict[str, Any]]) -> list[Path]:
    return [p for p in (loss_chart(run_dir, record), forgetting_chart(run_dir, record, runs)) if p is not None]

"""How an evaluation is shown: a rich table for people, Markdown rows for the nightly report, and a bar chart
of the per-leaf deltas (PNG). Leaf names are contributor text: escaped wherever they are printed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..markdown import text as md_text

COLOURS = {"improved": "green", "regressed": "red", "unchanged": "white", "new": "cyan", "unjudged": "yellow"}


def _num(v: float | None, signed: bool = False) -> str:
    return "—" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")


def table(result: Mapping[str, Any]) -> Any:
    """The per-leaf table (rich), titled with the two models and the judge, the error rate in its caption."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"{result['model']} vs {result['baseline']} (judge: {result['judge']})"),
              caption=f"judge error rate {result['judge_error_rate']:.1%}")
    for col, justify in (("leaf", "left"), ("questions", "right"), ("baseline → model", "right"),
                         ("delta", "right"), ("verdict", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for leaf, v in result["leaves"].items():
        colour = COLOURS.get(v["verdict"], "white")
        t.add_row(escape(leaf), str(v["questions"]), f"{_num(v['baseline'])} → {_num(v['model'])}",
                  _num(v["delta"], signed=True), f"[{colour}]{v['verdict']}[/{colour}]")
    return t


def metrics_table(result: Mapping[str, Any]) -> Any:
    """The judge-free metrics per leaf (baseline → model, delta) and the drift in the caption."""
    from rich.markup import escape
    from rich.table import Table

    names = [n for n in result.get("metrics_measured", ()) if n != "judge"]
    drift = result.get("drift") or {}
    caption = "" if drift.get("model") is None else (
        f"drift (nats/token on the baseline's everyday replies): {_num(drift.get('baseline'))} → "
        f"{_num(drift.get('model'))} ({_num(drift.get('delta'), signed=True)})")
    t = Table(title=escape(f"{result['model']} vs {result['baseline']}: metrics"), caption=caption)
    t.add_column("leaf")
    t.add_column("questions", justify="right")
    for n in names:
        t.add_column(f"{n} baseline → model", justify="right")
        t.add_column(f"{n} delta", justify="right")
    t.add_column("verdict")
    for leaf, v in result["leaves"].items():
        cells = []
        for n in names:
            m = (v.get("metrics") or {}).get(n) or {}
            cells += [f"{_num3(m.get('baseline'))} → {_num3(m.get('model'))}",
                      "—" if m.get("delta") is None else f"{m['delta']:+.3f}"]
        verdict = v.get("metrics_verdict", "")
        colour = COLOURS.get(verdict, "white")
        t.add_row(escape(leaf), str(v["questions"]), *cells, f"[{colour}]{verdict}[/{colour}]")
    return t


def _num3(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def markdown(result: Mapping[str, Any]) -> list[str]:
    """Report lines: the table and the judge's error rate."""
    lines = [f"Judge: {md_text(str(result['judge']), 200)}; judge error rate "
             f"**{result['judge_error_rate']:.1%}**.", "",
             "| leaf | questions | baseline → model | delta | verdict |", "|---|---|---|---|---|"]
    for leaf, v in result["leaves"].items():
        lines.append(f"| {md_text(leaf, 200)} | {v['questions']} | {_num(v['baseline'])} → {_num(v['model'])} | "
                     f"{_num(v['delta'], signed=True)} | {v['verdict']} |")
    return lines


def delta_chart(result: Mapping[str, Any], target: Path, title: str = "per-leaf score delta") -> Path | None:
    """A horizontal bar per leaf (model minus baseline, 1..10 scale), green improved, red regressed, a grey mark
    unchanged, blue new, each with its value and questions; ``None`` when no leaf has a delta."""
    from ..charts import KEY, NEW, Bar, bar_figure

    better = {"improved": True, "regressed": False}
    bars = [Bar(leaf, float(v["delta"]), better.get(v["verdict"]), v.get("questions"),
                NEW if v["verdict"] == "new" else "")
            for leaf, v in result["leaves"].items() if v["delta"] is not None]
    return bar_figure(bars, target, "judged score, model minus baseline (1-10 scale; > 0: better)", title,
                      KEY + " · blue: new (no baseline answer)")

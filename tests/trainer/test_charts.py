"""The report charts cannot mislead: better is green and worse red whatever the measure's sign, an unchanged
value is a visible mark, every label is whole, every bar names its n, tonight is on the forgetting history,
and the loss chart shows the parent's held-out loss."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex  # noqa: E402

from labrador.trainer import charts  # noqa: E402
from labrador.trainer.charts import BETTER, SAME, WORSE, Bar, signed_bars, wrap_label  # noqa: E402
from labrador.trainer.evaluation import output  # noqa: E402
from labrador.trainer.nightly import plots  # noqa: E402

LONG = "compositional_skills/extraction/inference/quantitative/very_long_leaf_name_that_goes_on_and_on/qna"


@pytest.fixture
def figures(monkeypatch):
    """Every figure a chart saves, kept open for inspection (the PNG is still written)."""
    kept = []

    def keep(fig, target, key=charts.KEY):
        kept.append(fig)
        fig.text(0, 0, key)
        fig.savefig(target, format="png")
        return Path(target)

    for module in (charts, plots):
        monkeypatch.setattr(module, "save", keep)
    return kept


def _colours(ax):
    return [to_hex(p.get_facecolor()) for p in ax.patches]


def test_wrap_label_keeps_every_character_and_breaks_after_slashes():
    wrapped = wrap_label(LONG, 38)
    assert wrapped.replace("\n", "") == LONG
    assert all(len(line) <= 38 for line in wrapped.splitlines())
    assert wrapped.splitlines()[0].endswith("/")
    assert wrap_label("short/leaf") == "short/leaf"


def test_signed_bars_colour_by_meaning_not_sign_and_mark_zero():
    plt = charts.pyplot()
    fig, ax = plt.subplots()
    signed_bars(ax, [Bar("a", -0.2, True, 13), Bar("b", 0.3, False, 2), Bar("c", 0.0, None, 4)], "x", "t")
    assert _colours(ax) == [to_hex(BETTER), to_hex(WORSE), to_hex(SAME)]
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["-0.200 (n = 13)", "+0.300 (n = 2)", "+0.000 (n = 4)"]
    zero_marks = [c for c in ax.collections if len(c.get_offsets())]
    assert len(zero_marks) == 1 and list(zero_marks[0].get_offsets()[0]) == [0, 2]  # the unchanged row shows
    assert any(line.get_xdata()[0] == 0 for line in ax.lines)  # the zero line
    plt.close(fig)


def test_forgetting_draws_an_improvement_green_and_puts_tonight_on_the_history(tmp_path, figures):
    record = {"id": "night-0003", "metrics": {"forgetting": {"night-0001": -0.207, "night-0002": 0.05},
                                              "sizes": {"night-0001": 13, "night-0002": 3}}}
    runs = [{"id": "night-0002", "metrics": {"forgetting": {"night-0001": 0.01}}}, {"id": "night-0001"}]
    path = plots.forgetting_chart(tmp_path, record, runs)
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    left, right = figures[-1].axes
    assert _colours(left) == [to_hex(BETTER), to_hex(WORSE)]
    assert [t.get_text() for t in left.texts] == ["-0.207 (n = 13)", "+0.050 (n = 3)"]
    assert [t.get_text() for t in right.get_xticklabels()] == ["night-0002", "night-0003"]
    assert "n = 2 nights" in right.get_title()


def test_branch_eval_chart_shows_unchanged_leaves_and_whole_labels(tmp_path, figures):
    result = {"leaves": {LONG: {"delta": 1.5, "verdict": "improved", "questions": 5},
                         "b/same": {"delta": 0.0, "verdict": "unchanged", "questions": 5},
                         "c/new": {"delta": 2.0, "verdict": "new", "questions": 3},
                         "d/worse": {"delta": -1.0, "verdict": "regressed", "questions": 5}}}
    assert output.delta_chart(result, tmp_path / "branch_eval.png").read_bytes()[:4] == b"\x89PNG"
    ax = figures[-1].axes[0]
    labels = [t.get_text().replace("\n", "") for t in ax.get_yticklabels()]
    assert labels == [LONG, "b/same", "c/new", "d/worse"]
    assert _colours(ax) == [to_hex(BETTER), to_hex(SAME), to_hex(charts.NEW), to_hex(WORSE)]
    assert "+0.000 (n = 5)" in [t.get_text() for t in ax.texts]
    assert output.delta_chart({"leaves": {"x": {"delta": None, "verdict": "unjudged", "questions": 0}}},
                              tmp_path / "none.png") is None


def test_loss_chart_draws_the_parents_heldout_loss(tmp_path, figures):
    from labrador.validators.atomic import atomic_write_jsonl

    (tmp_path / "train").mkdir()
    atomic_write_jsonl(tmp_path / "train" / "metrics.jsonl",
                       [{"phase": "night", "global_step": k, "loss": 3.0 - 0.1 * k} for k in range(1, 6)])
    record = {"metrics": {"heldout_loss": {"tonight": 2.6, "tonight_parent": 2.9}, "sizes": {"tonight": 13}}}
    assert plots.loss_chart(tmp_path, record).read_bytes()[:4] == b"\x89PNG"
    ax = figures[-1].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "parent model, tonight's held-out (n = 13): 2.900" in legend
    assert "new model, tonight's held-out (n = 13): 2.600" in legend
    assert "n = 5 steps" in ax.get_title()

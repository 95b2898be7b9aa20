"""The night's report never shows a mean without its count: a held-out loss over 1 sample is marked as such."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
from labrador.trainer.nightly.report import write_report  # noqa: E402


def test_every_held_out_mean_carries_its_n_and_few_samples_are_marked(tmp_path: Path) -> None:
    record = {"id": "night-0002", "status": "promoted", "reason": "r", "taxonomy_commit": "a" * 40, "teacher": "t",
              "model": "m", "metrics": {"heldout_loss": {"tonight": 1.5, "tonight_parent": 1.7, "night-0001": 1.2},
                                        "parent_loss": {"night-0001": 1.1}, "forgetting": {"night-0001": 0.1},
                                        "seed_loss": {"new": 2.0, "parent": 2.1},
                                        "sizes": {"tonight": 1, "seeds": 12, "night-0001": 4}}}
    report = write_report(tmp_path, record, [record]).read_text()
    assert "| tonight's new data | 1 (few) | 1.5000 | 1.7000 | |" in report
    assert "| seed examples of the changed leaves | 12 | 2.0000 | 2.1000 | |" in report
    assert "| night-0001 held-out | 4 (few) | 1.2000 | 1.1000 | 0.1000 |" in report

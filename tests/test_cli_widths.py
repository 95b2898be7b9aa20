"""What a person sees in a log: at 80 columns (rich's width when stdout is not a terminal) the identifiers the
next command needs (run ids, model names, packages, paths) are printed whole, never cut to ``night-00…``."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrador.validators.cli import main

LONG = "/a/rather/long/state/folder/that/does/not/fit/.labrador/runs/night-0001/train/night/final"


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _record(**extra: object) -> dict:
    return {"taxonomy_commit": "fb31581e342d" + "0" * 28, "leaves_regenerated": ["a", "b"], "leaves_removed": [],
            "reason": "tonight's held-out loss 1.704 -> 1.548 (n = 13), rule `gate_require_improvement`; worst "
                      "forgetting +0.000; " * 3, **extra}


def test_runs_and_the_summary_print_ids_and_paths_whole(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from labrador.trainer.nightly.registry import Registry

    registry = Registry(tmp_path / "registry.db")
    for _ in range(2):
        run = registry.start(_record())
        registry.update({**run, "status": "promoted", "model": LONG, "report": LONG + "/report.md",
                         "parent": "night-0001" if run["id"] == "night-0002" else None})
    assert main(["runs", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "night-0001" in out and "night-0002" in out and "fb31581e342d" in out and "…" not in out
    assert main(["runs", "--state-dir", str(tmp_path), "show", "night-0002"]) == 0
    out = capsys.readouterr().out
    assert f"model: {LONG}\n" in out and f"report: {LONG}/report.md\n" in out and "…" not in out


def test_models_list_prints_names_packages_and_files_whole(capsys: pytest.CaptureFixture) -> None:
    from labrador.trainer.models.catalogue import CATALOGUE

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for e in CATALOGUE.values():
        assert e.name in out and e.requirement in out and e.member.rsplit("/", 1)[-1] in out
    assert "…" not in out

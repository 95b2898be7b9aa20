"""[nightly] composes: its training is a [nightly.train] table that *is* a training config (the same keys, defaults
and checks as `labrador train`'s YAML), its mix a recipe reference; the old flat keys still work for one release."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from labrador.trainer.nightly.settings import DEFAULT_RECIPE, QUICK_RECIPE, QUICK_TRAIN, load_nightly, night_recipe
from labrador.trainer.train.config import TrainConfig, parse_config
from labrador.validators.settings import ConfigError


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labrador.toml"
    path.write_text('[nightly]\nbase_model = "base"\n' + text)
    return path


def night_config(path: Path, quick: bool = False) -> TrainConfig:
    return load_nightly(path, quick=quick).train_config("m", Path("/o"), Path("/d.jsonl"))


def test_the_train_table_is_a_training_config_with_its_defaults(tmp_path):
    cfg = night_config(toml(tmp_path, "[nightly.train]\nmax_seq_len = 512\n[[nightly.train.phases]]\nlr = 1e-4\n"))
    plain = parse_config({"model": "m", "output_dir": "/o", "phases": [{"name": "night", "data": "/d.jsonl"}]})
    assert cfg.max_seq_len == 512 and cfg.phases[0].lr == 1e-4
    assert replace(cfg, max_seq_len=plain.max_seq_len, phases=plain.phases, source="") == replace(plain, source="")
    assert cfg.phases[0].data == "/d.jsonl" and cfg.phases[0].name == "night"


@pytest.mark.parametrize("text, words", [
    ("[nightly.train]\nmax_seq_lenn = 1\n", ["[nightly] train", "max_seq_lenn", "did you mean 'max_seq_len'"]),
    ("[[nightly.train.phases]]\nlr = inf\n", ["phases[0].lr", "finite"]),
    ("[[nightly.train.phases]]\nepochs = 1\n[[nightly.train.phases]]\nepochs = 2\n", ["one phase"]),
    ("[nightly.train.distill]\nteacher_model = 't'\nlamda = 0.1\n", ["distill.lamda", "did you mean 'lambda'"]),
    ("recipe = 'missing.yaml'\n", ["cannot read recipe"]),
])
def test_a_bad_train_table_or_recipe_is_refused_when_read(tmp_path, text, words):
    with pytest.raises(ConfigError) as exc:
        load_nightly(toml(tmp_path, text))
    for w in words:
        assert w in str(exc.value)


def test_a_recipe_with_two_phases_is_refused(tmp_path):
    (tmp_path / "two.yaml").write_text("version: 1\nphases:\n  - name: a\n    groups: [{name: g, include: ['**']}]\n"
                                       "  - name: b\n    groups: [{name: g, include: ['**']}]\n")
    with pytest.raises(ConfigError, match="exactly one phase"):
        load_nightly(toml(tmp_path, "recipe = 'two.yaml'\n"))


def test_quick_is_a_preset_train_table_that_the_file_can_override(tmp_path):
    cfg = night_config(toml(tmp_path, "[[nightly.train.phases]]\nepochs = 1\n"), quick=True)
    assert cfg.phases[0].epochs == 1  # the file's key
    assert cfg.phases[0].lr == QUICK_TRAIN["phases"][0]["lr"] and cfg.max_seq_len == QUICK_TRAIN["max_seq_len"]
    assert cfg.save_every_steps == 10 and cfg.min_sample_tokens == 8  # said in the preset, not hidden in code


def test_quick_measures_held_out_seeds_instead_of_asking_a_135m_judge(tmp_path):
    from labrador.trainer.evaluation.settings import QUICK, load_evaluate
    from labrador.validators.settings import ConfigError

    path = toml(tmp_path, "")
    quick, plain = load_nightly(path, quick=True), load_nightly(path)
    assert not quick.branch_eval and not quick.gate_judged and plain.branch_eval and plain.gate_judged
    assert load_nightly(toml(tmp_path, "gate_judged = true\nbranch_eval = true\n"), quick=True).gate_judged
    assert quick.eval_earlier_leaves == 3 and plain.eval_earlier_leaves == 10  # a CPU night judges fewer
    assert load_nightly(toml(tmp_path, "eval_earlier_leaves = 7\n"), quick=True).eval_earlier_leaves == 7
    path = toml(tmp_path, "gate_judged = false\n")
    assert load_evaluate(path, quick=True) == QUICK and load_evaluate(path).questions_per_leaf == 0
    assert load_evaluate(toml(tmp_path, "[evaluate]\nmax_new_tokens = 32\n"), quick=True).max_new_tokens == 32
    with pytest.raises(ConfigError, match=r"\[evaluate\] min_delta"):
        load_evaluate(toml(tmp_path, "[evaluate]\nmin_delta = 20.0\n"))
    with pytest.raises(ConfigError, match="max_judge_error_rate"):
        load_nightly(toml(tmp_path, "max_judge_error_rate = 2.0\n"))


def test_the_removed_flat_keys_are_refused_as_unknown(tmp_path):
    for old in ("epochs = 3\n", "distill_teacher = 'teach'\n", "replay_fraction = 0.5\n"):
        with pytest.raises(ConfigError, match=r"\[nightly\] " + old.split(" ")[0]):
            load_nightly(toml(tmp_path, old))


def test_dae_model_paths_in_the_train_table_are_relative_to_the_file(tmp_path):
    cfg = night_config(toml(tmp_path, "[nightly.train.distill.dae]\nexpert = 'e'\nreference = '/abs/r'\n"
                                      "domain = ['knowledge/finance']\n"))
    assert (cfg.distill.dae.expert, cfg.distill.dae.reference) == (str(tmp_path / "e"), "/abs/r")


def test_the_default_recipe_replays_earlier_nights_and_the_quick_one_replays_a_few(tmp_path):
    recipe = night_recipe(load_nightly(toml(tmp_path, "")))
    assert recipe.source == str(DEFAULT_RECIPE) and recipe.phases[0].replay[0].dataset == "earlier-nights"
    assert recipe.phases[0].replay[0].max_per_leaf == 30
    quick = night_recipe(load_nightly(toml(tmp_path, ""), quick=True))
    assert quick.source == str(QUICK_RECIPE) and quick.phases[0].replay[0].max_per_leaf == 4
    mine = tmp_path / "mine.yaml"
    mine.write_text(DEFAULT_RECIPE.read_text())
    assert night_recipe(load_nightly(toml(tmp_path, "recipe = 'mine.yaml'\n"), quick=True)).source == str(mine)


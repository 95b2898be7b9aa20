"""Phase files into training samples: too long is skipped (never truncated), too short dropped, repeats kept
once, held-out chosen by content; every drop counted by reason. And the shipped accelerate configs load."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("transformers")
from tinymodel import _train_tokenizer  # noqa: E402
from trainkit import task_sample, write_phase  # noqa: E402

from labrador.trainer.train.data import DataError, content_key, is_heldout, load_phase, read_samples  # noqa: E402


def test_filters_count_every_drop(tmp_path):
    tok = _train_tokenizer()
    rng = random.Random(0)
    normal = [task_sample(rng, "reverse", words=5) for _ in range(30)]
    long = task_sample(rng, "reverse", words=400)
    short = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
    no_reply = {"messages": [{"role": "user", "content": "hello there"}]}
    first = {"messages": [{"role": "system", "content": "be kind"}, {"role": "assistant", "content": "an answer to "
                          "nothing at all, long enough"}, {"role": "user", "content": "and a question after it"}]}
    path = write_phase(tmp_path / "p.jsonl", normal + [long, short, no_reply, normal[0], first])
    from labrador.trainer.train.data import encode

    floor = len(encode(tok, short["messages"])) + 1
    assert all(len(encode(tok, s["messages"])) >= floor for s in normal)
    data = load_phase("p", path, tok, max_seq_len=256, min_tokens=floor, heldout_fraction=0.0)
    assert data.read == 35 and len(data.train) == 30
    assert data.dropped == {"longer_than_max_seq_len": 1, "shorter_than_min_tokens": 1, "no_assistant_turn": 1,
                            "duplicate": 1, "assistant_speaks_first": 1}  # issue 29.21: a reply to nothing
    assert all(len(s) <= 256 for s in data.train)  # nothing truncated: the long one is simply not there


def test_heldout_is_chosen_by_content_and_roughly_the_fraction(tmp_path):
    keys = [content_key([{"role": "user", "content": f"q{i}"}]) for i in range(4000)]
    share = sum(is_heldout(k, 0.05) for k in keys) / len(keys)
    assert 0.035 < share < 0.065
    assert not any(is_heldout(k, 0.0) for k in keys)
    tok = _train_tokenizer()
    rng = random.Random(1)
    path = write_phase(tmp_path / "p.jsonl", [task_sample(rng, "upper") for _ in range(200)])
    a = load_phase("p", path, tok, max_seq_len=256, min_tokens=1, heldout_fraction=0.2)
    b = load_phase("p", path, tok, max_seq_len=256, min_tokens=1, heldout_fraction=0.2)
    assert [s.key for s in a.heldout] == [s.key for s in b.heldout] and 20 < len(a.heldout) < 60
    c = load_phase("p", path, tok, max_seq_len=256, min_tokens=1, heldout_fraction=0.0,
                   never_train={s.key for s in a.heldout})
    assert not {s.key for s in c.train} & {s.key for s in a.heldout}
    assert c.dropped.get("heldout_elsewhere") == len({s.key for s in a.heldout})


@pytest.mark.parametrize("line, words", [
    ("not json", ["p.jsonl:2", "not a JSON object"]),
    ('{"messages": []}', ["p.jsonl:2", "expected"]),
    ('{"messages": [{"role": "user", "content": 5}]}', ["p.jsonl:2"]),
    ("[1, 2]", ["p.jsonl:2"]),
])
def test_a_bad_line_names_file_and_line(tmp_path, line, words):
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps(task_sample(random.Random(0), "upper")) + "\n" + line + "\n")
    with pytest.raises(DataError) as exc:
        read_samples(p)
    for w in words:
        assert w in str(exc.value)


@pytest.mark.parametrize("name", ["single_gpu", "fsdp_8gpu", "fsdp_2node"])
def test_shipped_accelerate_configs_load(name):
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(__file__).resolve().parents[3] / "trainer" / "configs" / f"{name}.yaml"
    cfg = load_config_from_file(str(path))
    assert cfg.mixed_precision == "bf16" and not cfg.use_cpu
    if name.startswith("fsdp"):
        assert cfg.fsdp_config["fsdp_version"] == 2 and cfg.num_processes >= 8

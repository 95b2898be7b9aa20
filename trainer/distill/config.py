"""What the ``distill:`` block needs beyond its schema (which is :class:`labrador.trainer.train.config.DistillConfig`,
validated with the rest of the training config): the teacher folders exist and share the student's tokenizer,
checked before any weights load."""

from __future__ import annotations

import json
from pathlib import Path

from labrador.trainer.train.config import DAEConfig, DistillConfig, TrainConfig, TrainConfigError

__all__ = ["DAEConfig", "DistillConfig", "check_distill", "same_tokenizer"]


def check_distill(config: TrainConfig, dc: DistillConfig, *, building_cache: bool = False) -> None:
    """Paths exist and every teacher shares the student's tokenizer, before any weights load."""
    models = [dc.teacher_model] if building_cache else dc.models()
    if building_cache and not dc.teacher_model:
        raise TrainConfigError(f"{config.source}: distill.teacher_model: `labrador distill cache` needs the "
                               "teacher model")
    for m in models:
        if not (Path(m) / "config.json").is_file():
            raise TrainConfigError(f"{config.source}: distill: teacher model {m} is not a Hugging Face model folder")
        same_tokenizer(config.model, m)
    if dc.offline and not building_cache and not (Path(dc.teacher_cache) / "shards").is_dir():
        raise TrainConfigError(f"{config.source}: distill.teacher_cache: {dc.teacher_cache} holds no cache; build it "
                               f"first with `labrador distill cache --config {config.source}`")


def same_tokenizer(student: str, teacher: str) -> None:
    """Teacher and student must share a vocabulary and special tokens: distributions are compared id by id."""
    from transformers import AutoTokenizer

    try:
        s, t = AutoTokenizer.from_pretrained(student), AutoTokenizer.from_pretrained(teacher)
    except (OSError, ValueError) as exc:
        raise TrainConfigError(f"distill: cannot load a tokenizer: {exc}") from None
    problems = []
    if s.get_vocab() != t.get_vocab():
        problems.append(f"vocabularies differ ({len(s)} vs {len(t)} tokens)")
    if sorted(s.all_special_tokens) != sorted(t.all_special_tokens):
        problems.append(f"special tokens differ ({json.dumps(s.all_special_tokens)} vs "
                        f"{json.dumps(t.all_special_tokens)})")
    if problems:
        raise TrainConfigError(f"distill: the student {student} and the teacher {teacher} do not share a tokenizer: "
                               f"{'; '.join(problems)}. Distillation compares distributions token id by token id; "
                               "use a teacher of the same family (or derive the student from it)")

"""Healing a derived student: cutting layers out of a model breaks it (the 2-layer cut of SmolLM2 scores
68.9 nats/token on the seed examples, worse than a uniform guess), so the parent is distilled into the cut
once, through ``labrador train`` itself (prediction-layer KL, optionally attention KL, λ = 1: no reply
loss, the parent's distribution is the whole target).

The corpus is one every machine has: the Python documentation's topic pages that ship inside the standard
library (``pydoc_data.topics``, the text ``help()`` prints; PSF licence), cut into passages and shaped as
chat turns, so the student learns the parent's English *and* its chat markup. Every token but the system
prompt is distilled (``unmask``). Fixed per Python version, not per taxonomy, so a healed student is cached
once and never depends on what contributors merged.

The result lives in the models cache under ``healed/``, keyed by (parent, layers, corpus, steps): built in
a work folder (a killed heal resumes there from its newest checkpoint, through the trainer's own resume)
and published by rename with its marker written last, so a second call is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_write_jsonl, publish_dir
from labrador.validators.locks import file_lock

from ..models.store import MARKER, models_root, weights_digest

CORPUS = "pydoc-topics"
VERSION = 1  # of the healing recipe below: bumped when a change to it would give another student
_WORDS = re.compile(r"\S+")


@dataclass(frozen=True)
class HealSettings:
    """How long and how hard to heal. The defaults are the quick night's: measured on a 2-core CPU
    (benchmarks/bench_heal.py)."""

    steps: int = 40  # optimizer steps (about 5 minutes for the 2-layer cut of SmolLM2 on 2 CPU cores)
    lr: float = 1.0e-3
    effective_batch: int = 8  # passages per step
    passage_words: int = 96  # words per passage (about 130 tokens)
    attention: float = 0.0  # weight of the attention KL (0: prediction KL only; > 0 needs eager attention)
    temperature: float = 1.0
    seed: int = 0
    save_every_steps: int = 25  # resumable checkpoints (not part of the cache key: it does not change the result)
    chat_samples: int = 160  # of the steps * effective_batch passages, this many are the parent's own sampled replies
    chat_tokens: int = 96  # longest sampled reply


def corpus_rows(words: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` chat samples: the topic's name as the question, a passage of its page as the answer."""
    from pydoc_data.topics import topics

    rows = []
    for name in sorted(topics):
        text = _WORDS.findall(topics[name])
        for i in range(0, max(len(text) - words // 2, 1), words):
            passage = " ".join(text[i:i + words])
            rows.append({"messages": [{"role": "user", "content": f"Tell me about {name} in Python."},
                                      {"role": "assistant", "content": passage}], "leaf": f"{CORPUS}/{name}"})
    random.Random(0).shuffle(rows)  # an even spread over the topics, the same on every machine
    return rows[:limit]


def corpus_digest(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def heal_key(parent: Path, layers: list[int], digest: str, s: HealSettings) -> str:
    """Stable for the same parent weights, cut, corpus and settings; anything else heals anew."""
    ident = weights_digest(parent)
    fields = {k: v for k, v in asdict(s).items() if k != "save_every_steps"}
    raw = json.dumps({"v": VERSION, "parent": ident, "layers": layers, "corpus": digest, **fields}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def chat_count(s: HealSettings) -> int:
    """How many of the corpus's passages are the parent's own replies (bounded by the corpus and the prompts)."""
    from .chat_corpus import TEMPLATES, TOPICS

    return min(s.chat_samples, s.steps * s.effective_batch, len(TEMPLATES) * len(TOPICS))


def healed_folder(parent: Path, layers: list[int], s: HealSettings, root: Path | None = None) -> tuple[Path, str,
                                                                                                   list[dict]]:
    """Where the healed cut lives, its key, and the corpus's fixed part (the documentation passages; the
    parent's sampled replies are made once, inside the heal, and keyed by their prompts and settings)."""
    from .chat_corpus import SAMPLING, chat_prompts

    chat = chat_count(s)
    rows = corpus_rows(s.passage_words, s.steps * s.effective_batch - chat)
    fixed = corpus_digest(rows)
    if chat:
        fixed = corpus_digest([fixed, chat_prompts(chat), SAMPLING])
    key = heal_key(parent, layers, fixed, s)
    name = f"{Path(parent).name}-{'_'.join(map(str, layers))}-healed-{key}"
    return (root or models_root()) / "healed" / name, key, rows


def is_healed(folder: Path, key: str) -> bool:
    """The folder holds the healed cut for ``key``, its weights exactly the ones published (a truncated or
    swapped weights file is not served: it is healed again)."""
    try:
        healed = json.loads((folder / MARKER).read_text(encoding="utf-8")).get("healed", {})
        return healed.get("key") == key and healed.get("weights") == weights_digest(folder)
    except (OSError, ValueError, AttributeError):
        return False


def heal_student(parent: Path, layers: list[int], s: HealSettings = HealSettings(), *, root: Path | None = None,
                 progress: bool = True, say: Callable[[str], None] = lambda text: None) -> Path:
    """The healed cut of ``parent`` keeping ``layers``: from the cache when done, else derived, distilled
    and published there (resuming a killed heal)."""
    from ..models.card import write_card
    from .derive import derive_student, derived_card

    parent = Path(parent)
    final, key, rows = healed_folder(parent, layers, s, root)
    if is_healed(final, key):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(str(final.parent / f".{final.name}.lock")):
        if is_healed(final, key):  # another process finished it while we waited
            return final
        work = final.parent / f".{final.name}.work"
        cut = work / "cut"
        if not (cut / MARKER).is_file():
            say(f"deriving layers {','.join(map(str, layers))} of {parent.name}")
            derive_student(parent, layers, cut)
        data = work / "corpus.jsonl"
        if not data.is_file():
            atomic_write_jsonl(data, _with_parent_replies(parent, rows, s, progress, say))
        summary = _distil(parent, cut, data, work / "train", s, progress, say)
        done = Path(summary["phases"]["heal"]["final"])
        tmp = work / "publish"
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(done, tmp)
        marker = json.loads((cut / MARKER).read_text(encoding="utf-8"))
        marker["healed"] = {"key": key, "corpus": CORPUS + ("+parent-replies" if chat_count(s) else ""), **asdict(s),
                            "heldout_loss": summary["heldout_loss"]["heal"]["heal"],
                            "weights": weights_digest(tmp)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        total = json.loads((parent / "config.json").read_text())["num_hidden_layers"]
        write_card(tmp, derived_card(parent, layers, total, final.name, healed=(
            f"Healed by distilling its parent for {s.steps} steps (lr {s.lr:g}, {s.effective_batch} passages a step, "
            f"{chat_count(s)} of them the parent's own replies); held-out loss after: "
            f"{marker['healed']['heldout_loss']:.3f}.")))
        publish_dir(tmp, final)
        shutil.rmtree(work, ignore_errors=True)
    return final


def _with_parent_replies(parent: Path, rows: list[dict[str, Any]], s: HealSettings, progress: bool,
                         say: Callable[[str], None]) -> list[dict[str, Any]]:
    """``rows`` and the parent's sampled replies to the first ``chat_samples`` fixed prompts, interleaved."""
    from .chat_corpus import chat_prompts, sample_replies

    n = chat_count(s)
    if n == 0:
        return rows
    say(f"sampling {n} chat replies of {parent.name} for the healing corpus")
    prompts = chat_prompts(n)
    from labrador.validators.progress import Progress

    with Progress("parent's replies", n, show=progress) as bar:
        chat = sample_replies(parent, prompts, s.chat_tokens, s.seed, tick=bar.update)
    mixed = rows + chat
    random.Random(s.seed).shuffle(mixed)
    return mixed


def _distil(parent: Path, cut: Path, data: Path, out: Path, s: HealSettings, progress: bool,
            say: Callable[[str], None]) -> dict[str, Any]:
    from ..train.config import parse_config
    from ..training import train

    config = parse_config({
        "model": str(cut), "output_dir": str(out), "seed": s.seed, "max_seq_len": 512, "max_tokens_per_batch": 2048,
        "heldout_fraction": 0.05, "min_sample_tokens": 8, "save_every_steps": s.save_every_steps, "keep_checkpoints": 1,
        "attn_implementation": "eager" if s.attention > 0 else "auto",
        "phases": [{"name": "heal", "data": str(data), "epochs": 1, "max_steps": s.steps, "lr": s.lr,
                    "effective_batch": s.effective_batch, "warmup_steps": max(1, s.steps // 20), "unmask": True,
                    "min_lr_ratio": 0.1}],
        "distill": {"teacher_model": str(parent), "lambda": 1.0, "temperature": s.temperature, "prediction": 1.0,
                    "attention": s.attention},
    }, source="healing")
    resume = (out / "run.json").is_file()
    say(f"{'resuming' if resume else 'distilling'} {parent.name} into the cut ({s.steps} steps)")
    return train(config, resume=resume, progress=progress)

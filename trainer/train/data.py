"""Phase files -> token ids and loss labels, through the model's own chat template.

Why character spans: any chat template works (ChatML, Llama 3, ours) without knowing its markup. Each
message is rendered wrapped in private-use marker characters; stripping them gives the exact text the
template makes and the character span of every message's content. A fast tokenizer's offsets then say
which tokens fall in an assistant reply. The special token that closes the reply (``<|im_end|>``,
``</s>``...) is trained too, so the model learns to stop. A template that rewrites content (trims it,
say) is detected by comparing with the unmarked rendering, never silently mis-masked.

``labels`` here follow the Hugging Face convention (same positions as ``input_ids``, -100 where no loss);
``targets`` are the labels shifted left by one inside the sample (``targets[t] = labels[t + 1]``), so a
packed row never asks the last token of one sample to predict the first of the next.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..jsonl import iter_jsonl

IGNORE = -100
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use code points: never in real text, one char each


class DataError(ValueError):
    """A phase file or sample that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Encoded:
    """One tokenised sample. ``input_ids``/``labels``: [T] lists of ints."""

    key: str  # content hash: held-out choice, top-k cache key
    input_ids: list[int]
    labels: list[int]
    leaf: str = ""
    meta: dict[str, str] = field(default_factory=dict, compare=False)  # the sample's other string fields

    @cached_property  # read every optimizer step: computed once per sample
    def targets(self) -> list[int]:
        """[T] next-token labels: ``labels[1:] + [-100]``."""
        return self.labels[1:] + [IGNORE]

    @cached_property
    def loss_tokens(self) -> int:
        return sum(1 for t in self.labels[1:] if t != IGNORE)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class PhaseData:
    """A phase's samples after the filters, split into train and held-out, with the counts of what was dropped."""

    name: str
    train: list[Encoded] = field(default_factory=list)
    heldout: list[Encoded] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> samples
    read: int = 0

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def tokens(self, split: str = "train") -> int:
        return sum(len(s) for s in getattr(self, split))


def content_key(messages: list[dict[str, Any]]) -> str:
    """A stable hash of what a sample says (not its metadata), so a replayed copy has the same key."""
    canon = json.dumps([{"role": m.get("role"), "content": m.get("content")} for m in messages],
                       sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def is_heldout(key: str, fraction: float) -> bool:
    """Held-out by content: the same sample is held out in every phase that uses the same fraction."""
    return fraction > 0 and int(key[:12], 16) / float(16**12) < fraction


ROLES = ("system", "user", "assistant")
BYTES_PER_TOKEN = 64  # a JSON line longer than max_seq_len * this cannot fit: skipped unread (never tokenised)


def line_limit(max_seq_len: int) -> int:
    """Bytes beyond which a sample's line is too long to be read (generous: JSON escapes, long tokens)."""
    return max(1 << 16, max_seq_len * BYTES_PER_TOKEN)


def read_samples(path: Path, *, max_line_bytes: int | None = None,
                 on_long: Callable[[int, int], None] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, sample) for each sample of ``path``; a bad line is an error naming the file and line
    (nothing is skipped silently: over-long lines go to ``on_long``)."""
    samples = []
    for n, sample in iter_jsonl(path, DataError, max_line_bytes=max_line_bytes, on_long=on_long):
        messages = sample.get("messages")
        if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        ):
            raise DataError(f'{path}:{n}: expected {{"messages": [{{"role": ..., "content": ...}}, ...]}}')
        for i, m in enumerate(messages):
            if m["role"] not in ROLES:
                raise DataError(f"{path}:{n}: message {i + 1} has role {m['role']!r}; only "
                                f"{', '.join(ROLES)} are trained (fix or remove the sample)")
        samples.append((n, sample))
    return samples


def _rendered(tokenizer: Any, messages: list[dict[str, Any]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False)


def message_spans(tokenizer: Any, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The template's text for ``messages`` and each message's content span in it (character offsets)."""
    marked = [{**m, "content": f"{_OPEN}{m['content']}{_CLOSE}"} for m in messages]
    text = _rendered(tokenizer, marked)
    plain: list[str] = []
    spans: list[tuple[int, int]] = []
    pos, start = 0, -1
    for ch in text:
        if ch == _OPEN:
            start = pos
        elif ch == _CLOSE:
            spans.append((start, pos))
        else:
            plain.append(ch)
            pos += 1
    out = "".join(plain)
    if len(spans) != len(messages) or out != _rendered(tokenizer, messages):
        raise DataError("the chat template changes message text (it trims or rewrites content), so the reply "
                        "tokens cannot be located exactly; use a template that inserts content verbatim")
    return out, spans


def encode(tokenizer: Any, messages: list[dict[str, Any]], *, unmask: bool = False, leaf: str = "",
           meta: dict[str, str] | None = None) -> Encoded:
    """Token ids and labels: assistant replies (plus the special token closing each) carry loss; with
    ``unmask`` every token outside system messages does (knowledge samples, LAB's "unmask")."""
    text, spans = message_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    offsets: list[tuple[int, int]] = enc["offset_mapping"]
    special = set(tokenizer.all_special_ids)
    trained = [False] * len(ids)
    for m, (a, b) in zip(messages, spans, strict=True):
        if unmask:
            if m["role"] == "system":
                continue
        elif m["role"] != "assistant":
            continue
        last = -1
        for i, (s, e) in enumerate(offsets):
            if s < b and e > a:  # token overlaps the content
                trained[i] = True
                last = i
        if last >= 0 and last + 1 < len(ids) and ids[last + 1] in special:
            trained[last + 1] = True  # the end-of-turn token
    if unmask:  # everything but system text: the markup between turns too
        system = [span for m, span in zip(messages, spans, strict=True) if m["role"] == "system"]
        for i, (s, e) in enumerate(offsets):
            if not any(s < b and e > a for a, b in system):
                trained[i] = True
    labels = [t if on else IGNORE for t, on in zip(ids, trained, strict=True)]
    if labels:
        labels[0] = IGNORE  # nothing predicts the first token
    return Encoded(content_key(messages), ids, labels, leaf, meta or {})


def load_phase(
    name: str,
    path: Path,
    tokenizer: Any,
    *,
    max_seq_len: int,
    min_tokens: int,
    heldout_fraction: float,
    unmask_all: bool = False,
    never_train: set[str] | frozenset[str] = frozenset(),
) -> PhaseData:
    """Read, tokenise and filter one phase file. Samples longer than ``max_seq_len`` are skipped (never
    truncated), shorter than ``min_tokens`` dropped as broken generations, exact repeats kept once;
    ``never_train`` keys (every phase's held-out samples) go to no training split."""
    out = PhaseData(name)
    seen: set[str] = set()

    def too_long(line: int, size: int) -> None:
        out.read += 1
        out.drop("longer_than_max_seq_len")

    for n, sample in read_samples(path, max_line_bytes=line_limit(max_seq_len), on_long=too_long):
        out.read += 1
        if not any(m["role"] == "assistant" for m in sample["messages"]):
            out.drop("no_assistant_turn")
            continue
        if next(m["role"] for m in sample["messages"] if m["role"] != "system") == "assistant":
            out.drop("assistant_speaks_first")  # a reply to nothing: no prompt to learn it from
            continue
        try:
            meta = {k: v for k, v in sample.items() if isinstance(v, str)}
            enc = encode(tokenizer, sample["messages"], unmask=unmask_all or bool(sample.get("unmask")),
                         leaf=str(sample.get("leaf", "")), meta=meta)
        except DataError as exc:
            raise DataError(f"{path}:{n}: {exc}") from None
        if len(enc) > max_seq_len:
            out.drop("longer_than_max_seq_len")
        elif len(enc) < min_tokens:
            out.drop("shorter_than_min_tokens")
        elif enc.loss_tokens == 0:
            out.drop("no_loss_tokens")
        elif enc.key in seen:
            out.drop("duplicate")
        else:
            seen.add(enc.key)
            if is_heldout(enc.key, heldout_fraction):
                out.heldout.append(enc)
            elif enc.key in never_train:
                out.drop("heldout_elsewhere")
            else:
                out.train.append(enc)
    return out


def heldout_keys(path: Path, fraction: float, max_line_bytes: int | None = None) -> set[str]:
    """The held-out keys of a phase file, from content alone (no tokenizer needed)."""
    return {k for _, s in read_samples(path, max_line_bytes=max_line_bytes, on_long=lambda n, size: None)
            if is_heldout(k := content_key(s["messages"]), fraction)}

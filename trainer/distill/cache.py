"""Offline teacher targets: the teacher's top-k log-probabilities at every response position, on disk.

Why: online distillation keeps a teacher in memory and runs it every step; the cache runs it once per
sample, ever. Layout: ``DIR/shards/shard-NNNNN.safetensors``, each self-describing: ``ids`` [rows, k]
int32, ``logprobs`` [rows, k] bf16, ``offsets`` [samples + 1] int64, and in the metadata the samples'
content keys, k, the temperature and the teacher. Keys are content hashes, so a re-mixed phase reuses what
was computed. A shard is written to a temporary name and renamed: a killed build redoes only its last
shard. Bytes per response token: 6·k (k = 64: 384 bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from labrador.validators.atomic import atomic_path

BYTES_PER_ENTRY = 4 + 2  # int32 id + bf16 log-probability


class CacheError(ValueError):
    """A cache that does not fit this run (other k, temperature or tokenisation); the message says what to do."""


def write_shard(folder: Path, index: int, keys: list[str], rows: list[tuple[torch.Tensor, torch.Tensor]],
                meta: dict[str, Any]) -> Path:
    """rows: per sample (ids [n_i, k] int, logprobs [n_i, k] float)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"shard-{index:05d}.safetensors"
    offsets = [0]
    for ids, _ in rows:
        offsets.append(offsets[-1] + ids.shape[0])
    tensors = {
        "ids": torch.cat([r[0] for r in rows]).to(torch.int32).contiguous(),
        "logprobs": torch.cat([r[1] for r in rows]).to(torch.bfloat16).contiguous(),
        "offsets": torch.tensor(offsets, dtype=torch.int64),
    }
    with atomic_path(final) as tmp:
        save_file(tensors, str(tmp), metadata={"keys": json.dumps(keys), **{k: str(v) for k, v in meta.items()}})
    return final


class TopKCache:
    """Read side: content key -> (ids [n, k], logprobs [n, k]) by memory-mapped shards."""

    def __init__(self, root: Path) -> None:
        from safetensors import safe_open

        self.root = Path(root)
        self.where: dict[str, tuple[int, int]] = {}  # key -> (shard, sample index in it)
        self.meta: dict[str, str] = {}
        self._shards: list[Any] = []
        self._offsets: list[list[int]] = []
        for i, path in enumerate(sorted((self.root / "shards").glob("shard-*.safetensors"))):
            f = safe_open(str(path), framework="pt")
            md = f.metadata()
            self._shards.append(f)
            self._offsets.append(f.get_tensor("offsets").tolist())
            for j, key in enumerate(json.loads(md["keys"])):
                self.where[key] = (i, j)
            self.meta = {k: v for k, v in md.items() if k != "keys"}

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def __len__(self) -> int:
        return len(self.where)

    @property
    def k(self) -> int:
        return int(self.meta.get("k", 0))

    def get(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        if key not in self.where:
            raise CacheError(f"{self.root}: no teacher targets for sample {key[:12]}; rebuild the cache with "
                             "`labrador distill cache` (the data changed since it was built)")
        s, j = self.where[key]
        a, b = self._offsets[s][j], self._offsets[s][j + 1]
        f = self._shards[s]
        return f.get_slice("ids")[a:b], f.get_slice("logprobs")[a:b]

    def batch_targets(self, batch: dict[str, Any], rows: list[tuple[int, int, int]]) -> tuple[torch.Tensor, ...]:
        """[B, T, k] ids and log-probs laid out like the micro-batch's logits (zeros where no loss)."""
        targets = batch["targets"]
        B, T = targets.shape
        ids = torch.zeros(B, T, self.k, dtype=torch.long)
        lps = torch.zeros(B, T, self.k, dtype=torch.float32)
        for key, (r, a, b) in zip(batch["sample_keys"], rows, strict=True):
            where = (targets[r, a:b] != -100).nonzero().flatten() + a
            got_ids, got_lps = self.get(key)
            if got_ids.shape[0] != where.numel():
                raise CacheError(f"{self.root}: sample {key[:12]} has {where.numel()} response positions but the "
                                 f"cache holds {got_ids.shape[0]}: it was built with another tokenizer or template")
            ids[r, where] = got_ids.long()
            lps[r, where] = got_lps.float()
        return ids, lps


def build_cache(
    root: Path,
    samples: Iterable[Any],
    teacher: Any,
    *,
    top_k: int,
    temperature: float,
    teacher_name: str,
    max_tokens: int,
    device: torch.device,
    shard_samples: int = 512,
    progress: Callable[[int], None] = lambda n: None,
) -> dict[str, int]:
    """Run ``teacher`` over the samples not yet cached; returns counts (``computed``, ``reused``, ``rows``)."""
    from labrador.trainer.train.batch import collate_packed, sample_rows
    from labrador.trainer.train.packing import pack

    root = Path(root)
    shards = root / "shards"
    existing = TopKCache(root) if shards.is_dir() else None
    if existing is not None and len(existing) and (existing.k != top_k or
                                                   float(existing.meta.get("temperature", 0)) != temperature):
        raise CacheError(f"{root}: holds k={existing.k}, temperature {existing.meta.get('temperature')}; this "
                         f"build asks k={top_k}, temperature {temperature}: use another folder")
    seen: set[str] = set(existing.where) if existing else set()
    todo = []
    reused = 0
    for s in samples:
        if s.key in seen:
            reused += 1
            continue
        seen.add(s.key)
        todo.append(s)
    for tmp in shards.glob(".shard-*.tmp*") if shards.is_dir() else []:
        tmp.unlink()  # half-written by a killed build: never read
    next_index = len(list(shards.glob("shard-*.safetensors"))) if shards.is_dir() else 0
    meta = {"k": top_k, "temperature": temperature, "teacher": teacher_name}
    rows_total = 0
    teacher.eval()
    for start in range(0, len(todo), shard_samples):
        chunk = todo[start : start + shard_samples]
        keys: list[str] = []
        rows: list[tuple[torch.Tensor, torch.Tensor]] = []
        lengths = [len(s) for s in chunk]
        for group in pack(range(len(chunk)), lengths, max_tokens):
            group = sorted(group)
            batch = collate_packed([chunk[i] for i in group])
            with torch.no_grad():
                logits = teacher(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device),
                                 use_cache=False).logits[0].float()
            logp = torch.log_softmax(logits / temperature, dim=-1)
            top = logp.topk(top_k, dim=-1)
            for key, (_, a, b) in zip(batch["sample_keys"], sample_rows(batch), strict=True):
                where = (batch["targets"][0, a:b] != -100).nonzero().flatten() + a
                keys.append(key)
                rows.append((top.indices[where].cpu(), top.values[where].cpu()))
                rows_total += where.numel()
            progress(len(group))
        write_shard(shards, next_index, keys, rows, meta)
        next_index += 1
    return {"computed": len(todo), "reused": reused, "rows": rows_total}

"""Teacher backed by a local model directory, run with transformers (CPU by default).

Why a custom sampler: SDG wants "same seed + same request -> same output" even when the micro-batcher
puts that request in a batch with unrelated ones. ``generate`` samples every row from one global RNG,
so the outcome would depend on the batch. :class:`_RowSampler` is a logits processor that does the
sampling itself, per row, with the row's own temperature/top_p and its own seeded ``torch.Generator``,
and returns a one-hot score; ``generate``'s own sampling step then just picks that token. As a bonus
requests with different temperatures, top_p and max_tokens share one padded ``generate`` call.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from labrador.trainer.devices import fast_dtype

from .base import Request, TeacherError, cut_at_stop, sample_seed
from .batcher import BatchedTeacher


class _RowSampler:
    """Per-row temperature / top-p sampling with per-row generators (see module docstring)."""

    def __init__(self, torch: Any, temps: list[float], top_ps: list[float], seeds: list[int]) -> None:
        self.torch = torch
        self.temps = torch.tensor(temps, dtype=torch.float32)
        self.top_ps = torch.tensor(top_ps, dtype=torch.float32)
        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        logits = scores.float()
        temps, top_ps = self.temps.to(logits.device), self.top_ps.to(logits.device)
        greedy = temps <= 0
        probs = torch.softmax(logits / torch.where(greedy, torch.ones_like(temps), temps)[:, None], dim=-1)
        sorted_p, sorted_idx = probs.sort(dim=-1, descending=True)
        # Nucleus: keep the smallest prefix whose mass reaches top_p (the first token always survives).
        sorted_p = sorted_p * ((sorted_p.cumsum(-1) - sorted_p) < top_ps[:, None])
        cum = sorted_p.cumsum(-1)
        u = torch.stack([torch.rand((), generator=g) for g in self.generators]).to(logits.device)
        pos = torch.searchsorted(cum, (u * cum[:, -1])[:, None]).clamp_(max=cum.shape[-1] - 1)
        choice = torch.where(greedy, logits.argmax(dim=-1), sorted_idx.gather(1, pos).squeeze(1))
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, choice[:, None], 0.0)


class _GrammarMask:
    """Rows whose request carries a JSON schema may only pick tokens that keep the reply valid under it
    (xgrammar, one matcher per row; rows without a schema are left alone). Runs before :class:`_RowSampler`.

    Shapes: ``input_ids`` (rows, tokens so far), ``scores`` (rows, vocab); row ``i`` is ``requests x n`` in
    ``generate``'s order."""

    def __init__(self, xgr: Any, torch: Any, grammars: list[Any | None], vocab: int) -> None:
        self.xgr, self.torch = xgr, torch
        self.matchers = [xgr.GrammarMatcher(g) if g is not None else None for g in grammars]
        self.bitmask = xgr.allocate_token_bitmask(len(grammars), vocab)
        self.started = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.started:  # the token each row picked last step: advance its matcher
            for i, m in enumerate(self.matchers):
                if m is not None and not m.is_terminated():
                    m.accept_token(int(input_ids[i, -1]))
        self.started = True
        self.bitmask.fill_(-1)  # all tokens allowed, then each constrained row narrows its own
        for i, m in enumerate(self.matchers):
            if m is not None and not m.is_terminated():
                m.fill_next_token_bitmask(self.bitmask, i)
        scores = scores.float()
        self.xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device), vocab_size=scores.shape[-1])
        return scores


class TransformersTeacher(BatchedTeacher):
    """Local ``from_pretrained`` model; concurrent ``complete`` calls are micro-batched."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        batch_size: int = 8,
        max_wait_s: float = 0.01,
        device: str = "cpu",
        dtype: str | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the transformers teacher needs torch and transformers: pip install 'labrador-lab[train]'"
            ) from exc
        path = Path(model_dir).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"not a model directory: {path}")
        self.name = f"transformers:{path}"
        self._torch = torch
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not getattr(tok, "chat_template", None):
            raise ValueError(f"{path} has no chat template; a teacher must be a chat model")
        tok.padding_side = "left"  # decoder-only: generated tokens must follow each prompt directly
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self._tokenizer = tok
        torch_dtype = getattr(torch, dtype or fast_dtype(device))
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
        self._model = model.to(device).eval()
        self._device = device
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {tok.eos_token_id}
        self._eos_ids = {i for i in eos_ids if i is not None}
        self._start_batcher(batch_size, max_wait_s)
        self.generate_calls = 0
        self._compiler: Any = None  # xgrammar's, made on the first request with a schema
        self._grammars: dict[str, Any] = {}  # schema -> compiled grammar, compiled once per run
        self.compile_seconds = 0.0  # observable: time spent compiling grammars

    # -- runs in the batcher's worker thread ---------------------------------------------------------

    def _run_batch(self, requests: list[Request]) -> list[list[str]]:
        # num_return_sequences is per generate call, so requests are grouped by n (usually one group).
        by_n: dict[int, list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            by_n[req.n].append(i)
        results: list[list[str]] = [[] for _ in requests]
        for n, idxs in by_n.items():
            for i, texts in zip(idxs, self._generate([requests[i] for i in idxs], n), strict=True):
                results[i] = texts
        return results

    def _generate(self, requests: list[Request], n: int) -> list[list[str]]:
        torch, tok = self._torch, self._tokenizer
        try:
            prompts = [
                tok.apply_chat_template(r.as_openai_messages(), tokenize=False, add_generation_prompt=True)
                for r in requests
            ]
        except Exception as exc:  # template errors (e.g. a role the template rejects) fail the batch
            raise TeacherError(f"chat template failed: {type(exc).__name__}: {exc}") from exc
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self._device)
        rows = [(r, sample_seed(r.seed, k)) for r in requests for k in range(n)]  # generate's row order
        sampler = _RowSampler(
            torch,
            temps=[r.temperature for r, _ in rows],
            top_ps=[r.top_p for r, _ in rows],
            seeds=[random.getrandbits(63) if s is None else s for _, s in rows],
        )
        processors: list[Any] = [sampler]
        if any(r.schema for r in requests):
            processors.insert(0, self._mask([r.schema for r, _ in rows]))
        with torch.inference_mode():
            out = self._model.generate(
                **enc,
                max_new_tokens=max(r.max_tokens for r in requests),
                do_sample=True,  # with one-hot scores from _RowSampler this is deterministic
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                num_return_sequences=n,
                logits_processor=processors,
                pad_token_id=tok.pad_token_id,
            )
        self.generate_calls += 1
        generated = out[:, enc["input_ids"].shape[1] :].tolist()
        texts = [self._decode(ids[: r.max_tokens], r) for ids, (r, _) in zip(generated, rows, strict=True)]
        return [texts[j * n : (j + 1) * n] for j in range(len(requests))]

    def _mask(self, schemas: list[str]) -> _GrammarMask:
        """The grammar mask for these rows; each distinct schema is compiled once for this tokenizer."""
        import json
        import time

        import xgrammar as xgr

        vocab = self._model.config.vocab_size
        if self._compiler is None:
            info = xgr.TokenizerInfo.from_huggingface(self._tokenizer, vocab_size=vocab,
                                                      stop_token_ids=sorted(self._eos_ids))
            self._compiler = xgr.GrammarCompiler(info)
        for schema in {s for s in schemas if s and s not in self._grammars}:
            started = time.perf_counter()
            body = json.dumps(json.loads(schema)["schema"])
            self._grammars[schema] = self._compiler.compile_json_schema(body, any_whitespace=False,
                                                                        strict_mode=True)
            self.compile_seconds += time.perf_counter() - started
        return _GrammarMask(xgr, self._torch, [self._grammars[s] if s else None for s in schemas], vocab)

    def _decode(self, ids: list[int], request: Request) -> str:
        end = next((k for k, t in enumerate(ids) if t in self._eos_ids), len(ids))
        text = self._tokenizer.decode(ids[:end], skip_special_tokens=True)
        return cut_at_stop(text, request.stop)

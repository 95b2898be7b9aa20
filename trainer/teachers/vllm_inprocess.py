"""Teacher running vLLM in this process (GPU machines): no server to manage, full batch throughput.

vLLM schedules a whole batch itself (continuous batching, paged KV cache), so the micro-batcher only
has to hand it everything submitted concurrently in one ``LLM.chat`` call. vLLM is imported only when
this backend is chosen, so the rest of Labrador works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Request
from .batcher import BatchedTeacher

INSTALL_HINT = "the vllm teacher needs vLLM (Linux + GPU): pip install 'labrador-lab[gpu]'"


class VLLMTeacher(BatchedTeacher):
    """``vllm.LLM`` on a local model path; ``llm_kwargs`` go to ``vllm.LLM`` (e.g. tensor_parallel_size)."""

    def __init__(
        self, model_path: str | Path, *, batch_size: int = 256, max_wait_s: float = 0.02, **llm_kwargs: Any
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self._vllm = vllm
        path = Path(model_path).expanduser()
        model = str(path.resolve()) if path.exists() else str(model_path)
        self.name = f"vllm:{model}"
        self._llm = vllm.LLM(model=model, **llm_kwargs)
        self._tokenizer = self._llm.get_tokenizer()
        self._start_batcher(batch_size, max_wait_s)

    def _run_batch(self, requests: list[Request]) -> list[list[str]]:
        params = [sampling_params(self._vllm, r) for r in requests]
        conversations = [r.as_openai_messages() for r in requests]
        outputs = self._llm.chat(conversations, sampling_params=params, use_tqdm=False)
        return [[c.text for c in sorted(out.outputs, key=lambda c: c.index)] for out in outputs]


def sampling_params(vllm: Any, request: Request) -> Any:
    """vLLM's ``SamplingParams`` for one request; a reply schema becomes vLLM's structured output (vLLM >= 0.12:
    ``structured_outputs=StructuredOutputsParams(json=...)``; the old ``guided_*`` fields are gone)."""
    extra: dict[str, Any] = {}
    if request.schema:
        import json

        schema = json.loads(request.schema)["schema"]
        extra["structured_outputs"] = vllm.sampling_params.StructuredOutputsParams(json=schema)
    return vllm.SamplingParams(n=request.n, max_tokens=request.max_tokens, temperature=request.temperature,
                               top_p=request.top_p, seed=request.seed, stop=list(request.stop) or None, **extra)

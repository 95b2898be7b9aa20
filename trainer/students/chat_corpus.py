"""Chat turns the parent writes itself, for healing: the parent's own replies are the text on which its
distribution is best defined, and they are shaped like what a night trains on (short instructions, chatty
answers), which the Python documentation is not.

The prompts are fixed here (task templates crossed with everyday topics; nothing from any taxonomy), so the
corpus depends only on the parent and the sampling settings, and a healed student can be cached by them.
The replies are sampled (temperature 0.8, top-k 50, seeded per batch, 64 at a time) in the device's fast number format.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMPLATES = (
    "Write a short paragraph about {t}.", "Explain {t} to a ten-year-old.", "Give three facts about {t}.",
    "Write a short story that involves {t}.", "What are the advantages and disadvantages of {t}?",
    "Write a friendly email to a colleague about {t}.", "Describe {t} in a few sentences.",
    "List five words that come to mind with {t}, and say why.", "Write a short poem about {t}.",
    "What would you tell a friend who wants to learn about {t}?",
)
TOPICS = (
    "the ocean", "gardening", "a rainy afternoon", "friendship", "the moon", "riding a bicycle", "cooking pasta",
    "learning a new language", "mountains", "a busy train station", "honey bees", "the history of paper",
    "saving money", "a birthday party", "volcanoes", "playing chess", "recycling", "the first day at school",
    "coffee", "owls", "a long walk", "rivers", "the night sky", "baking bread", "a small town library",
    "winter mornings", "music lessons", "electric cars", "the desert", "a job interview", "healthy sleep",
    "maps", "the weather", "a football match", "kindness", "old photographs", "building a birdhouse",
    "the internet", "autumn leaves", "a visit to the dentist",
)
SAMPLING = {"temperature": 0.8, "top_k": 50}  # top-k, not top-p: no sort of the vocabulary per token


def chat_prompts(n: int) -> list[str]:
    """``n`` distinct prompts, the same on every machine (at most len(TEMPLATES) * len(TOPICS))."""
    pairs = [(t, p) for p in TOPICS for t in TEMPLATES]
    random.Random(1).shuffle(pairs)
    return [t.format(t=p) for t, p in pairs[:n]]


def sample_replies(parent: Path, prompts: list[str], max_new_tokens: int, seed: int, *, batch_size: int = 64,
                   tick: Callable[[int], None] = lambda done: None) -> list[dict[str, Any]]:
    """One sampled reply of ``parent`` per prompt, as chat rows (``messages``, ``leaf``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labrador.trainer.devices import fast_dtype

    tok = AutoTokenizer.from_pretrained(str(parent))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(parent), dtype=getattr(torch, fast_dtype(device))).to(device)
    model.eval()
    rows: list[dict[str, Any]] = []
    for i in range(0, len(prompts), batch_size):
        batch = prompts[i:i + batch_size]
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                 for p in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        torch.manual_seed(seed * 100_003 + i)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                 **SAMPLING)
        for prompt, ids in zip(batch, out[:, enc["input_ids"].shape[1]:], strict=True):
            reply = tok.decode(ids, skip_special_tokens=True).strip()
            if reply:
                rows.append({"messages": [{"role": "user", "content": prompt},
                                          {"role": "assistant", "content": reply}], "leaf": "parent-chat"})
        tick(min(i + batch_size, len(prompts)))
    return rows

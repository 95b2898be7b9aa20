"""A conversation with a local model through its own chat template: greedy by default (so ``chat -q`` is
scriptable and repeatable), streamed as the tokens come, with the history kept for the session.

The loop reads lines and writes text through two callables, so a test drives it with a list of lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_write

COMMANDS = "/reset forgets the conversation, /save FILE writes it as a training sample (JSONL), /exit ends"


class Chat:
    """A model, its tokenizer and the conversation so far. ``device``: ``cuda`` where there is one, else
    ``cpu``; the dtype is :func:`~labrador.trainer.devices.fast_dtype`'s."""

    def __init__(self, folder: Path, *, system: str | None = None, max_new_tokens: int = 256,
                 device: str | None = None) -> None:
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        from ..devices import fast_dtype
        from ..train.lora import load_causal_lm

        hf_logging.disable_progress_bar()  # a "Loading weights" bar would mix into the conversation

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = load_causal_lm(folder, dtype=getattr(torch, fast_dtype(self.device)))  # an adapter folder too
        self.model.to(self.device).eval()
        self.system = system
        self.max_new_tokens = max_new_tokens
        self.history: list[dict[str, str]] = []

    def messages(self, text: str | None = None) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history + ([{"role": "user", "content": text}] if text is not None else [])

    def ask(self, text: str, on_text: Callable[[str], None] | None = None) -> str:
        """The model's greedy reply to ``text`` after the conversation so far; ``on_text`` gets it piece by
        piece as it is decoded."""
        import torch

        inputs = self.tokenizer.apply_chat_template(self.messages(text), add_generation_prompt=True,
                                                    return_tensors="pt", return_dict=True).to(self.device)
        streamer = _Streamer(self.tokenizer, on_text) if on_text is not None else None
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      streamer=streamer, pad_token_id=pad)
        reply = self.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        return reply

    def reset(self) -> None:
        self.history = []

    def save(self, path: Path) -> Path:
        """The conversation as one JSONL line ``{"messages": [...]}``: the format ``labrador train`` reads."""
        atomic_write(Path(path), (json.dumps({"messages": self.messages()}, ensure_ascii=False) + "\n").encode())
        return Path(path)


def _Streamer(tokenizer: Any, on_text: Callable[[str], None]) -> Any:  # noqa: N802 - a class, built late
    from transformers import TextStreamer

    class Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            on_text(text)

    return Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def repl(chat: Chat, lines: Iterable[str], write: Callable[[str], None]) -> int:
    """The conversation loop over ``lines`` (the terminal's, or a test's); returns the exit status."""
    write(f"chatting with the model; {COMMANDS}\n")
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            chat.reset()
            write("(conversation forgotten)\n")
            continue
        if text.startswith("/save"):
            target = text.removeprefix("/save").strip()
            if not target:
                write("/save needs a file name: /save chat.jsonl\n")
                continue
            try:
                write(f"(saved to {chat.save(Path(target).expanduser())})\n")
            except OSError as exc:
                write(f"cannot save to {target}: {exc.strerror}\n")
            continue
        if text.startswith("/"):
            write(f"unknown command {text.split()[0]}; {COMMANDS}\n")
            continue
        chat.ask(text, on_text=write)
        write("\n")
    return 0

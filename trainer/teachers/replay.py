"""A real :class:`~labrador.trainer.teachers.base.Teacher` that answers from recorded teacher output.

For tests and offline demos: replies come from ``records`` (request key -> texts, the same
``{"key", "texts"}`` lines a checkpoint file holds, so a real run's checkpoint is a recording)
or from ``rules`` (prompt name -> canned replies, picked by the request key so the choice is
deterministic whatever the call order). It counts answered calls per key, and can be told to
raise after K calls (simulated kill) or to fail requests containing some text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from labrador.trainer.teachers.base import Request, TeacherError

_TOKEN = re.compile(r"\w+|[^\w\s]")
# the generator's prompt files: read here as data (their system texts), never imported
BUILTIN_PROMPTS = Path(__file__).resolve().parent.parent / "sdg" / "prompts"


def prompt_classifier(override_dir: Path | None = None) -> Callable[[Request], str | None]:
    """Map a request back to the prompt file that made it, by its system text (an override file of the same name
    wins over the built-in one): how a recording's rules, keyed by prompt name, find their request."""
    import yaml

    files = {f.stem: f for f in sorted(BUILTIN_PROMPTS.glob("*.yaml"))}
    if override_dir is not None and Path(override_dir).is_dir():
        files.update({f.stem: f for f in sorted(Path(override_dir).glob("*.yaml"))})
    by_system: dict[str, str] = {}
    for name, file in sorted(files.items()):
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # the generator reports a broken prompt file; here it only cannot be matched
        if isinstance(data, dict) and str(data.get("system") or "").strip():
            by_system.setdefault(str(data["system"]).strip(), name)

    def classify(request: Request) -> str | None:
        system = next((c for role, c in request.messages if role == "system"), "")
        return by_system.get(system.strip())

    return classify


def load_recording(path: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(records, rules) from a JSON file ``{"records": {...}, "rules": {...}}`` or JSON Lines of
    ``{"key", "texts"}`` records and ``{"prompt", "responses"}`` rules."""
    text = Path(path).read_text("utf-8")
    records: dict[str, list[str]] = {}
    rules: dict[str, list[str]] = {}
    if path.suffix == ".json":
        obj = json.loads(text)
        return dict(obj.get("records", {})), dict(obj.get("rules", {}))
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # a torn last line of a checkpoint
        if "key" in obj:
            records[obj["key"]] = obj["texts"]
        elif "prompt" in obj:
            rules[obj["prompt"]] = obj["responses"]
    return records, rules


class ReplayTeacher:
    """Replays recorded completions; see the module docstring."""

    def __init__(self, records: Mapping[str, list[str]] | None = None,
                 rules: Mapping[str, list[str]] | None = None, *,
                 classify: Callable[[Request], str | None] | None = None, name: str = "replay",
                 fail_after: int | None = None, fail_with: type[BaseException] = KeyboardInterrupt,
                 fail_on: Iterable[str] = (), max_concurrency: int = 8, shuffle: bool = True) -> None:
        self.name = name
        self.records = dict(records or {})
        self.rules = {k: list(v) for k, v in (rules or {}).items()}
        if classify is None:
            classify = prompt_classifier()  # which of the generator's prompts a request renders
        self.classify = classify
        self.fail_after, self.fail_with, self.fail_on = fail_after, fail_with, tuple(fail_on)
        self.shuffle = shuffle
        self.calls: Counter[str] = Counter()  # answered requests per key
        self.started = 0  # complete() calls, answered or not
        self.requests: list[Request] = []  # answered requests, in answer order
        self._gate = asyncio.Semaphore(max_concurrency)
        self.closed = False

    @classmethod
    def from_file(cls, path: Path | str, **kwargs: Any) -> ReplayTeacher:
        """Load a recording; a JSON file's ``name`` becomes the teacher name unless ``name=`` is given."""
        path = Path(path)
        records, rules = load_recording(path)
        if path.suffix == ".json" and "name" not in kwargs:
            kwargs["name"] = json.loads(path.read_text("utf-8")).get("name", "replay")
        return cls(records, rules, **kwargs)

    def count_tokens(self, text: str) -> int:
        """Words and punctuation marks: deterministic, close enough to a real tokenizer for chunking."""
        return len(_TOKEN.findall(text))

    async def complete(self, request: Request) -> list[str]:
        self.started += 1
        if self.fail_after is not None and self.started > self.fail_after:
            raise self.fail_with(f"replay teacher stopped after {self.fail_after} calls")
        key = request.key()
        async with self._gate:
            if self.shuffle:  # finish out of submission order, deterministically
                for _ in range(int(key[:2], 16) % 7):
                    await asyncio.sleep(0)
            content = "\n".join(c for _, c in request.messages)
            if any(s in content for s in self.fail_on):
                raise TeacherError("replay teacher: request matches a fail_on string")
            texts = self._answer(request, key)
        self.calls[key] += 1
        self.requests.append(request)
        return texts

    def _answer(self, request: Request, key: str) -> list[str]:
        if key in self.records:
            texts = list(self.records[key])
            if len(texts) != request.n:
                raise TeacherError(f"recording for {key[:12]} has {len(texts)} texts, request wants {request.n}")
            return texts
        prompt = self.classify(request)
        replies = self.rules.get(prompt or "") or self.rules.get("*")
        if not replies:
            raise TeacherError(f"replay teacher has no recording for prompt {prompt!r} (key {key[:12]})")
        start = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % len(replies)
        return [replies[(start + j) % len(replies)] for j in range(request.n)]

    async def aclose(self) -> None:
        self.closed = True

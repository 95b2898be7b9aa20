"""A loopback OpenAI-compatible server that answers each freeform prompt like a good teacher, in the format
it asks for (everything passes the judges): generation runs every stage over real HTTP."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from openai_server import FakeOpenAIServer

from labrador.trainer.teachers import Request
from labrador.trainer.teachers.replay import prompt_classifier


class ScriptedServer(FakeOpenAIServer):
    """Answers each freeform prompt in the format it asks for; everything passes the judges."""

    classify = staticmethod(prompt_classifier())  # the prompt that made a request, from its system text

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = Request.chat(body["messages"], n=body.get("n", 1))
        name = self.classify(request)
        user = body["messages"][-1]["content"]
        tag = hashlib.sha256(f"{user}{body.get('seed')}".encode()).hexdigest()
        if name == "freeform_questions":  # three unrelated questions: nothing is a near-duplicate
            text = json.dumps({"questions": [f"Write a haiku about {' '.join(_words(tag, i))}." for i in range(3)]})
        elif name == "freeform_question_judge":
            text = '{"explanation": "Clear and on topic.", "score": 1}'
        elif name == "freeform_answer":
            text = f"A haiku over HTTP {tag[:8]}"
        elif name == "freeform_pair_judge":
            text = '{"explanation": "Does what was asked.", "score": 3}'
        else:
            return 400, {"error": {"message": f"unexpected prompt {name}"}}
        choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                   for i in range(body.get("n", 1))]
        return 200, {"id": "x", "object": "chat.completion", "choices": choices}


def _words(tag: str, i: int) -> list[str]:
    digest = hashlib.sha256(f"{tag}:{i}".encode()).hexdigest()
    return [digest[k : k + 6] for k in range(0, 36, 6)]

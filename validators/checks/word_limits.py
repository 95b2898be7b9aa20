"""InstructLab documents word limits it never enforces; long seeds overflow the teacher's prompt."""

from collections.abc import Iterator

from ..config import Config
from ..findings import Finding

CHECKS = (
    ("context-too-long", "error", "a knowledge context over max_context_words (default 500)"),
    ("qna-too-long", "error", "the Q&A pairs of one knowledge context over max_qna_words (default 250)"),
    ("skill-too-long", "error", "a skill's seeds (question + answer + context) over max_skill_words (default 2,300)"),
)


def _words(value: object) -> int:
    return len(value.split()) if isinstance(value, str) else 0


def check(data: dict, marks: dict, branch: str, config: Config) -> Iterator[Finding]:
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return
    if branch == "knowledge":
        for i, seed in enumerate(seeds):
            if not isinstance(seed, dict):
                continue
            n = _words(seed.get("context"))
            if n > config.max_context_words:
                line, col = marks.get(("seed_examples", i, "context"), (0, 0))
                yield Finding("context-too-long", "error",
                              f"context has {n} words; the limit is {config.max_context_words}", line, col,
                              hint="Shorten it to the passage the questions need.")
            qas = seed.get("questions_and_answers")
            if isinstance(qas, list):
                n = sum(_words(qa.get("question")) + _words(qa.get("answer")) for qa in qas if isinstance(qa, dict))
                if n > config.max_qna_words:
                    line, col = marks.get(("seed_examples", i, "questions_and_answers"), (0, 0))
                    yield Finding("qna-too-long", "error",
                                  f"the questions and answers of this context have {n} words; "
                                  f"the limit is {config.max_qna_words}", line, col,
                                  hint="Shorten the answers or drop a pair.")
        return
    total = sum(_words(s.get(k)) for s in seeds if isinstance(s, dict) for k in ("question", "answer", "context"))
    if total > config.max_skill_words:
        line, col = marks.get(("seed_examples",), (0, 0))
        yield Finding("skill-too-long", "error",
                      f"the seed examples have {total} words in total; the limit is {config.max_skill_words}",
                      line, col, hint="Shorten the examples; five short ones teach as well as long ones.")

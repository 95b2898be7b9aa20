"""InstructLab documents word limits it never enforces; long seeds overflow the teacher's prompt. Each limit
also holds in characters (about ten per word), since a text without spaces counts as one word."""

from collections.abc import Iterator

from ..config import Config
from ..findings import Finding

CHECKS = (
    ("context-too-long", "error", "a knowledge context over max_context_words (500) or max_context_chars (5,000)"),
    ("qna-too-long", "error", "the Q&A pairs of one knowledge context over max_qna_words (250) or max_qna_chars "
     "(2,500)"),
    ("skill-too-long", "error", "a skill's seeds (question + answer + context) over max_skill_words (2,300) or "
     "max_skill_chars (23,000)"),
)


def _words(value: object) -> int:
    return len(value.split()) if isinstance(value, str) else 0


def _chars(value: object) -> int:
    return len(value) if isinstance(value, str) else 0


def _over(words: int, chars: int, max_words: int, max_chars: int, what: str) -> str | None:
    """The message when ``what`` is over either limit, else None."""
    if words > max_words:
        return f"{what} {words} words; the limit is {max_words}"
    if chars > max_chars:
        return f"{what} {chars:,} characters; the limit is {max_chars:,}"
    return None


def check(data: dict, marks: dict, branch: str, config: Config) -> Iterator[Finding]:
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return
    if branch == "knowledge":
        for i, seed in enumerate(seeds):
            if not isinstance(seed, dict):
                continue
            context = seed.get("context")
            message = _over(_words(context), _chars(context), config.max_context_words, config.max_context_chars,
                            "context has")
            if message:
                line, col = marks.get(("seed_examples", i, "context"), (0, 0))
                yield Finding("context-too-long", "error", message, line, col,
                              hint="Shorten it to the passage the questions need.")
            qas = seed.get("questions_and_answers")
            if isinstance(qas, list):
                texts = [qa.get(k) for qa in qas if isinstance(qa, dict) for k in ("question", "answer")]
                message = _over(sum(map(_words, texts)), sum(map(_chars, texts)), config.max_qna_words,
                                config.max_qna_chars, "the questions and answers of this context have")
                if message:
                    line, col = marks.get(("seed_examples", i, "questions_and_answers"), (0, 0))
                    yield Finding("qna-too-long", "error", message, line, col,
                                  hint="Shorten the answers or drop a pair.")
        return
    texts = [s.get(k) for s in seeds if isinstance(s, dict) for k in ("question", "answer", "context")]
    message = _over(sum(map(_words, texts)), sum(map(_chars, texts)), config.max_skill_words, config.max_skill_chars,
                    "the seed examples have in total")
    if message:
        line, col = marks.get(("seed_examples",), (0, 0))
        yield Finding("skill-too-long", "error", message, line, col,
                      hint="Shorten the examples; five short ones teach as well as long ones.")

"""Prompts are data: ``prompts/<name>.yaml`` files, rendered in a Jinja2 sandbox.

A taxonomy repository may replace any built-in by shipping ``sdg/prompts/<name>.yaml``; the
file's bytes go into the leaf cache key, so changing a prompt regenerates exactly the leaves
that use it. Seed text and teacher text are only ever passed as *variables*: they are data and
are never compiled as templates, so ``{{ 7*7 }}`` in a completion stays ``{{ 7*7 }}``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import Field, Strict

from labrador.trainer.teachers.base import Request, canonical_schema, parse_reply
from labrador.validators.typed import FORBID_EXTRA, Name, Number, Positive, Text, Texts, Tokens, validate

from .parsing import Parsed, json_cut_short, judge_parser

BUILTIN_DIR = Path(__file__).parent / "prompts"
_NAME = re.compile(r"[a-z0-9_]{1,64}")
MAX_RENDERED = 1_000_000  # characters in one rendered message
MAX_N = 128  # completions one request may ask for (a prompt file's n)


class _Sandbox(ImmutableSandboxedEnvironment):
    """No attribute tricks, no mutation of shared data, and no ``'a' * 10**9`` memory bombs from an
    override file: prompt files come from a taxonomy repository, which the teacher machine need not trust."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent too large in a prompt template")
        if operator == "*":
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_RENDERED:
                raise SecurityError("repetition too large in a prompt template")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class PromptError(ValueError):
    """A prompt or pipeline file that cannot be used; the message names the file."""


@lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    """Compile trusted-shape template source (a prompt file, a pipeline's format step) in the sandbox."""
    try:
        return _ENV.from_string(source)
    except TemplateError as exc:
        raise PromptError(f"template does not compile: {exc}") from None


@dataclass(frozen=True)
class Prompt:
    """One teacher prompt with its sampling parameters; judges also carry a score parser and threshold."""

    name: str
    version: int
    system: str
    template: str
    n: int = 1
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    parse: Mapping[str, Any] | None = None
    threshold: float | None = None
    source: bytes = b""
    path: str = ""
    schema: Mapping[str, Any] | None = None  # the reply's JSON schema: asked for, enforced where the backend can

    @property
    def is_judge(self) -> bool:
        return self.parse is not None or (self.schema is not None and self.threshold is not None)

    def score(self, text: str) -> int | None:
        return self.verdict(text)[0]

    def verdict(self, text: str) -> tuple[int | None, str]:
        """A judge's reply as (score, explanation), parsed once; (None, "") when it does not parse (free-text
        judges have no explanation)."""
        if self.schema is not None:
            value = json_reply(self.request_schema(), text)
            if not isinstance(value, dict):
                return None, ""
            return value["score"], str(value.get("explanation", ""))[:300]
        assert self.parse is not None
        return judge_parser(dict(self.parse))(text), ""

    def request_schema(self, variables: Mapping[str, Any] | None = None) -> str:
        """The named schema a request carries (``""``: free text). A generator asked for ``num`` items gets
        at most ``num``: the rendered ``num`` (a profile may lower it) caps its array's ``maxItems``."""
        if not self.schema:
            return ""
        schema = dict(self.schema)
        num = (variables or {}).get("num")
        if self.threshold is None and isinstance(num, int) and num > 0:
            key = _array_key(schema)
            array = dict(schema["properties"][key])
            array["maxItems"] = min(num, array.get("maxItems", num))
            schema["properties"] = {**schema["properties"], key: array}
        return canonical_schema({"name": self.name, "schema": schema})

    def items(self, text: str) -> Parsed:
        """A generator's reply as items: the elements of the schema's one array (strings, or objects of
        strings such as ``{question, answer}``). A reply that fails the schema is one ``parse_error``, or one
        ``truncated`` when it stops mid-JSON."""
        value = json_reply(self.request_schema(), text)
        if not isinstance(value, dict):
            return Parsed(errors=Counter({"truncated" if json_cut_short(text) else "parse_error": 1}))
        out = Parsed()
        for item in value[_array_key(self.schema or {})]:
            if isinstance(item, str):
                item = item.strip()
            elif isinstance(item, dict):
                item = {k: str(v).strip() for k, v in item.items()}
            if item and (not isinstance(item, dict) or all(item.values())):
                out.items.append(item)
            else:
                out.errors["empty"] += 1
        return out

    def render(self, variables: Mapping[str, Any]) -> str:
        """Render the user message; raises ``TemplateError`` (e.g. a missing variable) for the caller to count."""
        return render_checked(compile_template(self.template), variables)


# the block markers our prompts and parsers use; in seed or teacher text they could forge a block
_MARKER = re.compile(r"\[\s*(end|question|answer|reference|context|score|document|verdict|explanation|item|tag)\s*\]",
                     re.IGNORECASE)


def defang(value: Any) -> Any:
    """``value`` with every block marker (``[End]``, ``[Question]``, ``[Score]``...) in its text turned into
    a harmless look-alike (``(End)``), so contributor or teacher text can never open or close a block in a
    prompt or in a reply we parse. Lists, tuples and mappings are walked; other values pass through."""
    if isinstance(value, str):
        return _MARKER.sub(lambda m: f"({m.group(1)})", value) if "[" in value else value
    if isinstance(value, list | tuple):
        return type(value)(defang(v) for v in value)
    if isinstance(value, Mapping):
        return {k: defang(v) for k, v in value.items()}
    return value


def render_checked(template: Template, variables: Mapping[str, Any]) -> str:
    """Render and strip; an oversized result is a ``SecurityError`` rather than a huge request."""
    text = template.render(**variables).strip()
    if len(text) > MAX_RENDERED:
        raise SecurityError(f"rendered text is {len(text):,} characters; the limit is {MAX_RENDERED:,}")
    return text


def find_prompt(name: str, override_dir: Path | None = None) -> Path:
    """The override file if the taxonomy ships one, else the built-in."""
    if not _NAME.fullmatch(name):
        raise PromptError(f"prompt name {name!r} must match {_NAME.pattern}")
    if override_dir is not None and (candidate := override_dir / f"{name}.yaml").is_file():
        return candidate
    path = BUILTIN_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PromptError(f"no prompt named {name!r} (looked in {override_dir or '-'} and the built-ins)")
    return path


def load_prompt(name: str, override_dir: Path | None = None) -> Prompt:
    path = find_prompt(name, override_dir)
    source = path.read_bytes()
    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: not valid YAML: {exc}") from None
    return _build(raw, source, str(path), name)


@dataclass(frozen=True)
class PromptFile:
    """A prompt YAML file as written (validated by pydantic: unknown keys and wrong types are errors)."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    name: Name
    version: Positive
    system: Text
    template: Text
    description: Text = ""
    n: Annotated[int, Strict(), Field(ge=1, le=MAX_N)] = 1  # completions per request (OpenAI's own cap is 128)
    max_tokens: Tokens = 512
    temperature: Number = 0.7
    top_p: Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)] = 1.0
    stop: Texts = ()
    vars: dict[str, Any] = field(default_factory=dict)
    parse: dict[str, Any] | None = None
    threshold: Number | None = None
    schema: dict[str, Any] | None = None  # the reply's JSON schema (then no `parse:`: the schema is the format)


def json_reply(schema: str, text: str) -> Any:
    """The reply's JSON when it matches ``schema``, else ``None`` (hostile text included)."""
    return parse_reply(schema, text)[0]


def _array_key(schema: Mapping[str, Any]) -> str:
    """The one array property of a generator's reply object (``questions``, ``contexts``, ``pairs``)."""
    props = schema.get("properties") or {}
    arrays = [k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "array"]
    if schema.get("type") != "object" or len(arrays) != 1 or arrays[0] not in (schema.get("required") or []):
        raise PromptError("a generator's schema is an object with exactly one required array property (its items)")
    return arrays[0]


def _check_schema(f: PromptFile) -> None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(f.schema)
    except jsonschema.SchemaError as exc:
        raise PromptError(f"schema: not a JSON schema: {exc.message}") from None
    if f.parse is not None:
        raise PromptError("give `schema:` or `parse:`, not both: the schema is the reply's format")
    if f.threshold is not None:
        score = ((f.schema or {}).get("properties") or {}).get("score") or {}
        if score.get("type") != "integer" or "score" not in ((f.schema or {}).get("required") or []):
            raise PromptError("a judge's schema needs a required integer `score`")
    else:
        _array_key(f.schema or {})


def _build(raw: object, source: bytes, path: str, name: str) -> Prompt:
    f = validate(PromptFile, raw, path, error=PromptError)
    if f.name != name:
        raise PromptError(f"{path}: name {f.name!r} does not match the file name {name!r}")
    try:
        if f.schema is not None:
            _check_schema(f)
        prompt = Prompt(name=name, version=f.version, system=f.system.strip(), template=f.template, n=f.n,
                        max_tokens=f.max_tokens, temperature=f.temperature, top_p=f.top_p, stop=f.stop,
                        vars=dict(f.vars), parse=f.parse, threshold=f.threshold, source=source, path=path,
                        schema=f.schema)
        compile_template(prompt.template)
        if prompt.parse is not None:
            judge_parser(dict(prompt.parse or {}))
        if prompt.is_judge:
            if prompt.threshold is None or prompt.n != 1:
                raise PromptError("a judge (a prompt with parse:) needs a threshold and n: 1")
    except (TypeError, ValueError) as exc:
        raise PromptError(f"{path}: {exc}") from None
    return prompt


def load_prompts(names: list[str], override_dir: Path | None = None) -> dict[str, Prompt]:
    return {name: load_prompt(name, override_dir) for name in sorted(set(names))}


def build_request(prompt: Prompt, variables: Mapping[str, Any], *, seed: int | None, n: int | None = None,
                  max_tokens: int | None = None, structured: bool = True,
                  max_temperature: float | None = None) -> Request:
    """The chat request for one row: system text from the file, user text rendered from the row;
    ``max_tokens`` and ``max_temperature`` cap the prompt's own (generation profiles). ``structured``: the
    request carries the prompt's schema for the backend to enforce (off: the prompt still asks for that JSON,
    in words)."""
    user = prompt.render(variables)
    messages = ((("system", prompt.system),) if prompt.system else ()) + (("user", user),)
    cap = prompt.max_tokens if max_tokens is None else min(prompt.max_tokens, max_tokens)
    return Request(messages=messages, n=n or prompt.n, max_tokens=cap,
                   temperature=prompt.temperature if max_temperature is None else min(prompt.temperature,
                                                                                     max_temperature),
                   top_p=prompt.top_p, seed=seed, stop=prompt.stop,
                   schema=prompt.request_schema(variables) if structured else "")



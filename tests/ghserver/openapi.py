"""Validate what the test server says (and accepts) against GitHub's official OpenAPI description.

Hand-written fakes drift from GitHub; checking every JSON response body, every request body and
every webhook payload against `@octokit/openapi` (api.github.com, OpenAPI 3.0.3) keeps the fake
honest. Schemas use OpenAPI 3.0 `nullable`, which JSON Schema draft 4 lacks, so every keyword of
the draft-4 validator is wrapped to accept `null` where the (sub)schema says `nullable: true`.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.protocols import Validator

from .npm import package_dir

SPEC_FILE = "generated/api.github.com.json"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class SpecViolation(AssertionError):
    """A body the server produced (or was sent) contradicts GitHub's OpenAPI description."""


def _nullable(keyword: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """Wrap a draft-4 keyword so `null` passes wherever the schema is `nullable: true`."""

    def wrapped(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        if instance is None and schema.get("nullable") is True:
            return
        errors = keyword(validator, value, instance, schema)
        if errors:
            yield from errors

    return wrapped


_formats = FormatChecker(formats=())


@_formats.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@_formats.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


OAS30Validator = jsonschema.validators.extend(
    Draft4Validator, {k: _nullable(v) for k, v in Draft4Validator.VALIDATORS.items()}
)


class Spec:
    """GitHub's REST description loaded once; validators are built lazily and cached per use."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self._cache: dict[tuple[str, ...], Validator | None] = {}
        self._lock = threading.Lock()
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def operation(self, method: str, template: str) -> dict[str, Any]:
        """The operation object; KeyError means the server serves something GitHub does not have."""
        try:
            return self.doc["paths"][template][method.lower()]
        except KeyError:
            raise KeyError(f"{method.upper()} {template} is not an operation of api.github.com") from None

    def match_path(self, path: str) -> str | None:
        """The api.github.com path template a concrete path belongs to (most literal one wins)."""
        with self._lock:
            if self._templates is None:
                pats = [
                    (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(t)) + "$"), t)
                    for t in self.doc["paths"]
                ]
                self._templates = sorted(pats, key=lambda p: p[1].count("{"))
        return next((t for rx, t in self._templates if rx.match(path)), None)

    def _deref(self, obj: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in obj:
            node: Any = self.doc
            for part in obj["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            obj = node
        return obj

    def _validator(self, key: tuple[str, ...], schema: dict[str, Any] | None) -> Validator | None:
        with self._lock:
            if key not in self._cache:
                if schema is None:
                    self._cache[key] = None
                else:
                    root = {"allOf": [schema], "components": self.doc["components"]}
                    self._cache[key] = OAS30Validator(root, format_checker=_formats)
            return self._cache[key]

    def response_schema(self, method: str, template: str, status: int) -> tuple[bool, dict[str, Any] | None]:
        """(documented?, JSON schema or None when the documented response has no JSON body)."""
        responses = self.operation(method, template)["responses"]
        resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        if resp is None:
            return False, None
        content = self._deref(resp).get("content") or {}
        media = content.get("application/json") or next((v for k, v in content.items() if k.endswith("json")), None)
        return True, (media or {}).get("schema")

    def validate_response(self, method: str, template: str, status: int, body: Any) -> None:
        """Raise :class:`SpecViolation` unless `body` is what GitHub documents for this status."""
        documented, schema = self.response_schema(method, template, status)
        where = f"{method.upper()} {template} -> {status}"
        if not documented and status < 400:
            raise SpecViolation(f"{where}: status not documented by GitHub")
        if schema is None and status >= 400 and body not in (None, b"", ""):
            schema = self.doc["components"]["schemas"]["basic-error"]  # GitHub sends one even if undocumented
        if schema is None:
            if body not in (None, b"", ""):
                raise SpecViolation(f"{where}: GitHub documents no body, server sent {body!r:.200}")
            return
        validator = self._validator(("resp", method.lower(), template, str(status)), schema)
        self._raise_first(validator, body, where)

    def request_errors(self, method: str, template: str, body: Any) -> list[str]:
        """Messages describing why GitHub would reject this request body (empty = acceptable)."""
        rb = self.operation(method, template).get("requestBody")
        if not rb:
            return []
        media = self._deref(rb).get("content", {}).get("application/json")
        if body is None:
            return ["Request body is required"] if rb.get("required") else []
        validator = self._validator(("req", method.lower(), template), (media or {}).get("schema"))
        return [_describe(e) for e in validator.iter_errors(body)] if validator else []

    def webhook_schema(self, event: str, action: str | None) -> dict[str, Any] | None:
        """Request-body schema of a webhook, keyed like GitHub's `x-webhooks` (`pull-request-opened`)."""
        hooks = self.doc.get("x-webhooks", {})
        base = event.replace("_", "-")
        hook = hooks.get(f"{base}-{action.replace('_', '-')}" if action else base) or hooks.get(base)
        if hook is None:
            return None
        return hook["post"]["requestBody"]["content"]["application/json"]["schema"]

    def validate_webhook(self, event: str, action: str | None, payload: Any) -> None:
        """Raise :class:`SpecViolation` if a webhook payload contradicts GitHub's description."""
        schema = self.webhook_schema(event, action)
        if schema is None:
            raise SpecViolation(f"webhook {event}.{action} is not described by api.github.com")
        validator = self._validator(("hook", event, action or ""), schema)
        self._raise_first(validator, payload, f"webhook {event}.{action}")

    @staticmethod
    def _raise_first(validator: Validator | None, body: Any, where: str) -> None:
        if validator is None:
            return
        errors = sorted(validator.iter_errors(body), key=lambda e: len(e.absolute_path))
        if errors:
            detail = "\n".join(_describe(e) for e in errors[:5])
            raise SpecViolation(f"{where}: body does not match GitHub's OpenAPI schema:\n{detail}")


def _describe(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "<root>"
    if error.context:  # anyOf/oneOf: the innermost reasons are what a human needs
        best = jsonschema.exceptions.best_match(error.context)
        return f"{path}: {error.message[:200]} (best match: {best.message[:200]})"
    if len(error.message) > 200:  # huge instances: say which rule failed instead of echoing them
        return f"{path}: fails {error.validator!r} = {error.validator_value!r:.100}"
    return f"{path}: {error.message}"


@functools.cache
def load_spec() -> Spec:
    """Parse the ~13 MB description once per process (about half a second)."""
    with open(package_dir("@octokit/openapi") / SPEC_FILE, encoding="utf-8") as fh:
        return Spec(json.load(fh))

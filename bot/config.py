"""Bot settings: the ``[bot]`` table of a TOML file for everything public, environment variables for secrets.

Why split: a settings file is shared, copied and committed; secrets live only in the process environment (or
a file the environment names), are wrapped in :class:`Secret` so no repr, log line or job ever shows them, and
never travel in argv.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from labrador.trainer.teachers.config import TeacherSettings, load_teacher
from labrador.validators.config import Config, ConfigError, load_config
from labrador.validators.settings import coerce, section_values

ENV_PREFIX = "LABRADOR_"
GITHUB_API = "https://api.github.com"

if TYPE_CHECKING:  # the bounded types of these keys (read by validators.settings)
    from labrador.validators.typed import Count, IdText, Number, Retries, Seconds, Text


class Secret:
    """A string that will not print itself: repr/str are masked, pickling (into a job) is refused."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("secrets are never serialized (jobs hold no secrets)")


def mask_url(url: str) -> str:
    """``redis://:pw@host`` -> ``redis://:***@host``: queue URLs may carry a password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class BotSettings:
    """Everything the webhook app and the workers need; secrets are :class:`Secret`."""

    app_id: IdText = ""  # an id written without quotes is the same text
    installation_id: Count = 0  # 0: look it up per repository (or take it from the event)
    api_url: Text = GITHUB_API  # REST root; anything else is GitHub Enterprise (or the loopback test server)
    queue_url: Text = ""  # sqlite:///relative.db, sqlite:////absolute.db or redis://host:port/db; "" = work_dir
    work_dir: Text = ".labrador-bot"  # git caches, merge records, the default SQLite queue
    bot_login: Text = "labrador[bot]"  # only this author's comment can be the sticky one
    maintainers_team: Text = ""  # "org/slug" or "slug" (org = repository owner): may run /lab preview
    job_deadline_s: Seconds = 600.0
    retries: Retries = 2
    retry_delay_s: Seconds = 30.0
    orphan_reruns: Retries = 1  # how often a job whose worker died is queued again
    heartbeat_s: Seconds = 10.0
    stale_after_s: Seconds = 60.0  # a running job that has not beaten for this long is dead
    pending_ttl_s: Seconds = 3600.0
    delivery_ttl_s: Seconds = 7 * 24 * 3600.0
    max_body_bytes: Count = 2 * 1024 * 1024
    taxonomy_dir: Text = "taxonomy"
    check_name: Text = "Labrador"
    preview_check_name: Text = "Labrador preview"
    max_leaves: Count = 300
    preview_max_leaves: Count = 5
    preview_samples: Count = 3
    dispatch_workflow: Text = ""  # e.g. "nightly.yml": dispatched on the default branch after a merge
    merges_file: Text = ""  # "" = <work_dir>/merges.jsonl
    fetch_max_bytes: Count = 512 * 1024 * 1024
    fetch_timeout_s: Seconds = 300.0
    rate_limit_max_wait_s: Seconds = 300.0  # longest wait for GitHub's rate limit within a job (and its deadline)
    preview_limit: Count = 5  # /lab preview runs per pull request per preview_window_s (0: no limit)
    preview_window_s: Seconds = 3600.0
    shutdown_grace_s: Seconds = 8.0  # SIGTERM: finish running jobs for this long, then queue them again
    git_cache_max_bytes: Count = 5 * 1024**3  # the git cache is pruned, least recently used first, to this size
    git_cache_max_age_days: Number = 14.0  # ... and of repositories untouched for this long
    read_timeout_s: Seconds = 10.0  # a webhook client must send its headers and body within this
    worker_poll_s: Seconds = 0.5  # longest wait between polls of an idle queue (`labrador bot worker --poll-interval`)
    webhook_secret: Secret = field(default_factory=Secret, repr=True)
    private_key: Secret = field(default_factory=Secret, repr=True)
    checker: Config = field(default_factory=Config, repr=False)  # the bot's trusted [check]/[documents]
    teacher: TeacherSettings = field(default_factory=TeacherSettings)  # [teacher]: previews' teacher

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("checker", "teacher")}
        shown["queue_url"] = mask_url(self.queue_url)
        return "BotSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir).expanduser()

    @property
    def resolved_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{self.work_path / 'bot.db'}"

    @property
    def merges_path(self) -> Path:
        return Path(self.merges_file).expanduser() if self.merges_file else self.work_path / "merges.jsonl"

    def team(self, repo: str) -> tuple[str, str] | None:
        """(org, slug) of the maintainers team for ``repo`` (owner/name), or None when none is configured."""
        if not self.maintainers_team:
            return None
        org, _, slug = self.maintainers_team.rpartition("/")
        return (org or repo.split("/", 1)[0], slug)


_SECRET_FIELDS = ("webhook_secret", "private_key")
_ENV_FIELDS = {"app_id": "APP_ID", "installation_id": "INSTALLATION_ID", "api_url": "API_URL",
               "queue_url": "QUEUE_URL", "work_dir": "WORK_DIR"}


def _refuse(key: str) -> str:
    if key in _SECRET_FIELDS or "secret" in key or "key" in key.split("_"):
        return ("secrets are read from the environment (LABRADOR_WEBHOOK_SECRET, LABRADOR_APP_PRIVATE_KEY_FILE), "
                "never from files")
    return ""


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> BotSettings:
    """Read ``[bot]`` from ``path`` (a labrador.toml), then environment overrides and secrets.

    ``LABRADOR_WEBHOOK_SECRET``, ``LABRADOR_APP_PRIVATE_KEY`` (or ``LABRADOR_APP_PRIVATE_KEY_FILE``),
    ``LABRADOR_APP_ID``, ``LABRADOR_INSTALLATION_ID``, ``LABRADOR_API_URL``, ``LABRADOR_QUEUE_URL``,
    ``LABRADOR_WORK_DIR``. Secret keys in the file are refused: they belong in the environment.
    """
    env = os.environ if env is None else env
    defaults = BotSettings()
    checker = Config()
    values: dict[str, Any] = {}
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: cannot read settings: no such file")
        values = section_values(Path(path), "bot", defaults, exclude=(*_SECRET_FIELDS, "checker", "teacher"),
                                paths=("work_dir",), refuse=_refuse)
        checker = load_config(Path(path))
    values["teacher"] = load_teacher(path, env)
    for name, suffix in _ENV_FIELDS.items():
        if env.get(ENV_PREFIX + suffix):
            values[name] = coerce(f"environment {ENV_PREFIX}{suffix}:", BotSettings, name, env[ENV_PREFIX + suffix],
                                  from_text=True)
    values["webhook_secret"] = Secret(env.get(ENV_PREFIX + "WEBHOOK_SECRET", ""))
    key = env.get(ENV_PREFIX + "APP_PRIVATE_KEY", "")
    key_file = env.get(ENV_PREFIX + "APP_PRIVATE_KEY_FILE", "")
    if not key and key_file:
        try:
            key = Path(key_file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"LABRADOR_APP_PRIVATE_KEY_FILE: cannot read the key file: {exc.strerror}") from None
    values["private_key"] = Secret(key)
    return replace(defaults, checker=checker, **values)

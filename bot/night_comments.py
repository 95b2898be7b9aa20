"""Back to the contributor: after a night, one comment on each merged pull request whose leaves that night
trained — the night's id, promoted or not, and each of its leaves' judged score (baseline → model) and verdict.

The nightly job calls :func:`after_night` through the ``labrador.night_hooks`` entry point (the trainer never
imports the bot). The merge records (``merges.jsonl``) say which pull request brought which leaf. Comments
are idempotent: one per pull request, found by a hidden marker and the bot's login, edited on every later
night that trains its leaves (a rerun edits, never adds). Off when no forge is configured (no GitHub App and
no token). Leaf names and reasons are contributor text: escaped by :mod:`labrador.trainer.markdown`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from labrador.trainer import markdown as md

from .appauth import Token
from .config import BotSettings, Secret, load_settings
from .forge import Forge, ForgeError
from .merges import read_merges

MARKER = "<!-- labrador:nightly-result -->"
_URL = re.compile(r"https?://[^\s()<>\[\]`]+")
Say = Callable[[str], None]


def pulls_for(record: Mapping[str, Any], merges: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], list[str]]:
    """``{(repo, pr): [leaf, ...]}``: the merged pull requests whose leaves this night regenerated."""
    trained = set(record.get("leaves_regenerated") or ())
    out: dict[tuple[str, int], list[str]] = {}
    for m in merges:
        pr = m.get("pr")
        if not isinstance(pr, int) or isinstance(pr, bool) or pr < 1 or not isinstance(m.get("leaves"), list):
            continue  # read_merges kept only objects; a record of another shape names no pull request
        leaves = sorted(trained & {leaf for leaf in m["leaves"] if isinstance(leaf, str)})
        if leaves and isinstance(m.get("repo"), str) and m["repo"]:
            key = (m["repo"], pr)
            out[key] = sorted(set(out.get(key, [])) | set(leaves))
    return out


def comment_body(record: Mapping[str, Any], leaves: Iterable[str], report_url: str = "") -> str:
    """The comment (Markdown), starting with the hidden marker."""
    status = str(record.get("status", ""))
    judged = (record.get("branch_eval") or {}).get("leaves") or {}
    verdict = {"promoted": "was **promoted**", "rejected": "was **not promoted**"}.get(status, f"ended {status}")
    lines = [MARKER, f"### Labrador nightly {md.text(record.get('id', ''), 40)}", "",
             f"The night that trained this pull request's leaves {verdict}: {md.text(record.get('reason', ''), 500)}",
             ""]
    rows = []
    for leaf in leaves:
        v = judged.get(leaf)
        if v is None:
            rows.append([md.text(leaf, 200), "—", "—", "not judged"])
            continue
        def num(x: Any) -> str:
            return "—" if x is None else f"{x:.2f}"
        rows.append([md.text(leaf, 200), f"{num(v.get('baseline'))} → {num(v.get('model'))}",
                     "—" if v.get("delta") is None else f"{v['delta']:+.2f}", md.text(v.get("verdict", ""), 20)])
    lines.append(md.table(["leaf", "judged score (1-10), before → after", "delta", "verdict"], rows))
    held = (record.get("heldout") or {}).get("leaves") or {}
    measured = [leaf for leaf in leaves if (held.get(leaf) or {}).get("ref_nll")]
    if measured:
        def n3(x: Any) -> str:
            return "—" if x is None else f"{x:.3f}"
        lines += ["", "On the leaf's held-out seeds (never trained on; nats per token of the seed's answer, lower "
                  "is better):", "",
                  md.table(["leaf", "base → parent → tonight", "gain on the parent"],
                           [[md.text(leaf, 200), " → ".join(n3(held[leaf]["ref_nll"].get(k))
                                                            for k in ("base", "parent", "candidate")),
                             "—" if held[leaf]["ref_nll"].get("delta") is None
                             else f"{-held[leaf]['ref_nll']['delta']:+.3f}"] for leaf in measured])]
    if judged:
        rate = (record.get("branch_eval") or {}).get("judge_error_rate", 0.0)
        lines += ["", f"Judge error rate {rate:.0%}. Scores are a judge model's, on the leaf's own seed questions."]
    url = report_url.replace("{id}", str(record.get("id", "")))
    if url and _URL.fullmatch(url):  # the maintainers' setting, still checked: no spaces, parentheses or markup
        lines += ["", f"[The night's report]({url})"]
    return "\n".join(lines) + "\n"


def post(record: Mapping[str, Any], merges: Iterable[Mapping[str, Any]], forge: Forge, bot_login: str,
         report_url: str = "") -> list[tuple[str, int, str]]:
    """Post or edit one comment per pull request; ``[(repo, pr, "created"|"edited"|"error: …")]``. Each pull
    request is on its own: whatever one raises (the forge's error, the client library's, a network fault) is
    its line, the token scrubbed out, and the others go on."""
    done = []
    for (repo, pr), leaves in sorted(pulls_for(record, merges).items()):
        body = comment_body(record, leaves, report_url)
        try:
            old = forge.find_comment(repo, pr, MARKER, bot_login)
            if old is None:
                forge.create_comment(repo, pr, body)
                done.append((repo, pr, "created"))
            else:
                forge.edit_comment(repo, old.id, body)
                done.append((repo, pr, "edited"))
        except ForgeError as exc:  # one pull request's failure never stops the others
            done.append((repo, pr, f"error: {_scrubbed(forge, str(exc))}"))
        except Exception as exc:  # noqa: BLE001 - github3's and requests' own errors too
            done.append((repo, pr, f"error: {_scrubbed(forge, f'{type(exc).__name__}: {exc}')}"))
    return done


def _scrubbed(forge: Any, text: str) -> str:
    scrub = getattr(forge, "scrub", None)
    return scrub(text)[:500] if callable(scrub) else text[:500]


class _StaticToken:
    """A personal or workflow token (``[nightly] github_token_env``) in place of App installation tokens."""

    def __init__(self, value: str) -> None:
        self.value = value

    def installation_for(self, where: str) -> int:
        return 1

    def token(self, installation_id: int, now: float | None = None) -> Token:
        return Token(Secret(self.value), time.time() + 10 * 365 * 86400, "2099-01-01T00:00:00Z")

    def drop(self, installation_id: int) -> None:
        pass


def make_forge(settings: BotSettings, token_env: str = "") -> Forge | None:
    """The forge for comments: a token from the environment variable ``token_env`` when set, else the App's
    installation token; ``None`` when neither is configured."""
    from .github import GitHubForge

    token = os.environ.get(token_env, "") if token_env else ""
    if token:
        return GitHubForge(settings, _StaticToken(token), 1)  # type: ignore[arg-type]
    if settings.app_id and settings.private_key.reveal():
        from .appauth import InstallationTokens

        return GitHubForge(settings, InstallationTokens(settings.api_url, settings.app_id, settings.private_key))
    return None


def after_night(record: Mapping[str, Any], config: Path | None, nightly: Any, say: Say) -> None:
    """The ``labrador.night_hooks`` entry: comment on the pull requests this night trained. Never raises
    (a night's result stands whatever GitHub says); says what it did."""
    if record.get("status") not in ("promoted", "rejected"):
        return
    try:
        settings = load_settings(config) if config is not None and Path(config).is_file() else load_settings()
        token_env = getattr(nightly, "github_token_env", "")
        forge = make_forge(settings, token_env)
        if forge is None:
            return  # no forge configured: comments are off
        skipped: list[int] = []
        merges = read_merges(settings.merges_path, skipped)
        if skipped:
            say(f"{settings.merges_path}: {len(skipped)} unreadable merge record(s) skipped (line "
                f"{', '.join(map(str, skipped[:5]))}{', ...' if len(skipped) > 5 else ''})")
        results = post(record, merges, forge, settings.bot_login, getattr(nightly, "report_url", ""))
    except Exception as exc:  # noqa: BLE001 - a hook must not fail the night
        text = f"{type(exc).__name__}: {exc}"
        secret = os.environ.get(token_env, "") if token_env else ""
        say(f"pull request comments skipped: {(text.replace(secret, '***') if secret else text)[:500]}")
        return
    for repo, pr, what in results:
        say(f"{repo}#{pr}: nightly comment {what}")

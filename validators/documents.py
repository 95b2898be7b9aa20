"""Knowledge documents: check a leaf's ``document:`` block and read the files it names.

pygit2 and a bare cache, because the checker runs in CI and in the bot without a ``git``
binary and must not download a repository once per leaf. The URL, commit and patterns are
hostile input: no requests to private hosts, no path escapes, bounded fetches and walks.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pygit2

from .config import Config
from .findings import Finding, Report
from .gitfetch import BoundedFetch, FetchCancelled, bare_repository, bound_network_waits
from .locks import file_lock

MAX_FILES = 100_000  # tree entries walked per commit
MAX_PATH = 1024  # longer paths (tree bombs) are skipped
MAX_DOC_BYTES = 64 << 20  # one document
MAX_TOTAL_BYTES = 512 << 20  # all documents of one leaf
MAX_FETCH_BYTES = 2 << 30  # one fetch
FETCH_SECONDS = 600.0  # one fetch, wall clock
SUFFIXES = (".md", ".pdf")
_SHA = re.compile(r"[0-9a-fA-F]{40}")
_TREE, _BLOBS = 0o040000, (0o100644, 0o100755)  # symlinks (0o120000) and submodules are never files
_KEY_REPO, _KEY_COMMIT, _KEY_PATTERNS = ("document", "repo"), ("document", "commit"), ("document", "patterns")
FAILURE_TTL = 300.0  # seconds a failed fetch is remembered
_MEMO: dict[tuple[Path, str], tuple[float, DocumentError | None, bool]] = {}  # (repo, sha) -> (when, err, found)
_FILES: dict[tuple[str, str], tuple[list[tuple[str, pygit2.Oid]], bool]] = {}


class DocumentError(Exception):
    """A leaf's documents cannot be resolved; ``check`` is the check id, ``hint`` the fix."""

    def __init__(self, message: str, check: str = "document-fetch", hint: str = "", key: tuple = _KEY_REPO):
        super().__init__(f"{message}. {hint}" if hint else message)
        self.message, self.check, self.hint, self.key = message, check, hint, key

    def copy(self) -> DocumentError:
        return DocumentError(self.message, self.check, self.hint, self.key)


def forget() -> None:
    """Drop the in-process memory of fetches and trees (the on-disk cache stays)."""
    _MEMO.clear()
    _FILES.clear()


def normalize_url(url: str) -> str:
    """Canonical URL for cache keys and self matching: lowercase scheme and host, no ``/`` or ``.git`` tail."""
    url = url.strip()
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.scheme:
            url = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
    return url.rstrip("/").removesuffix(".git").rstrip("/")


def _redact(text: str) -> str:
    return re.sub(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s]*@", r"\1", text)


def _private(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_repo_url(url: object, config: Config) -> str | None:
    """Why ``url`` may not be fetched, or None. Hosts are an allowlist so a leaf cannot aim the checker
    at internal services; ``http://host`` entries in ``allowed_hosts`` opt that exact host into plain http."""
    if not isinstance(url, str) or not url.strip():
        return "the document repo must be a URL"
    if any(c.isspace() or ord(c) < 32 or c in "\\\x7f" for c in url):
        return "the repo URL contains whitespace, control characters or backslashes"
    if "://" not in url:
        if re.match(r"^([A-Za-z]:)?[/.~]", url):
            return "the repo is a local path; only https:// URLs can be fetched"
        if re.match(r"^[^/@]+@[^/:]+:", url) or re.match(r"^[\w.-]+:(?!\d+/)", url):
            return "the repo is an SSH (scp-style) address; only https:// URLs can be fetched"
        return "the repo is not a URL; only https:// URLs can be fetched"
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"the repo URL cannot be parsed: {exc}"
    scheme = parts.scheme.lower()
    if scheme == "file":
        return None if config.allow_file_urls else "file:// URLs are refused: a leaf must not make the checker " \
            "read the machine it runs on"
    if scheme not in ("https", "http"):
        return f"the {scheme}:// scheme is refused; only https:// URLs can be fetched"
    if "@" in parts.netloc:
        return "the repo URL carries a user name or password; credentials never belong in a leaf"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "the repo URL has no host"
    if _private(host) and not config.allow_private_hosts:
        return f"{host} is a loopback, private, link-local or reserved address"
    entries = [h.strip().lower().rstrip("/") for h in config.allowed_hosts]
    hosts = [h.split("://", 1)[-1] for h in entries]
    if scheme == "http" and f"http://{host}" not in entries:
        return f"plain http:// is refused for {host}; use https://"
    if not any(host == h or host.endswith("." + h) for h in hosts if h):
        return f"{host} is not an allowed document host"
    return None


def _is_self(url: object, config: Config) -> bool:
    return isinstance(url, str) and normalize_url(url) in {normalize_url(u) for u in config.self_urls}


def _component(comp: str) -> re.Pattern[str]:
    """One path component as a regex; fnmatch's atomic groups between stars keep hostile ``*a*a*a*b`` linear."""
    chunks: list[list[str]] = [[]]  # pieces between stars
    i, n = 0, len(comp)
    while i < n:
        c, i = comp[i], i + 1
        if c == "*":
            if chunks[-1] or len(chunks) == 1:
                chunks.append([])
        elif c == "?":
            chunks[-1].append(".")
        elif c == "[" and (j := comp.find("]", i + 1 if comp[i:i + 1] in ("!", "]") else i)) > 0:
            body, i = comp[i:j], j + 1
            neg = body.startswith("!")
            body = "".join(ch if ch == "-" else re.escape(ch) for ch in body[neg:])
            chunks[-1].append(f"[{'^' if neg else ''}{body}]")
        else:
            chunks[-1].append(re.escape(c))
    parts = ["".join(chunk) for chunk in chunks]
    out = "" if comp.startswith(".") else r"(?!\.)"  # like glob: wildcards skip dot-files
    out += parts[0] + "".join(f"(?>.*?{p})" for p in parts[1:-1]) + (f".*{parts[-1]}" if len(parts) > 1 else "")
    return re.compile(out, re.S)


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Python ``glob`` semantics on repository paths: ``*`` stays in one directory, a ``**`` component spans
    any depth, wildcards skip dot-files. Matched component by component over the set of reachable positions,
    so no pattern can backtrack exponentially. Raises ``re.error`` for a malformed class like ``[z-a]``."""
    comps = [c for c in pattern.split("/") if c not in ("", ".")]
    rxs = [None if c == "**" else _component(c) for c in comps]

    def match(path: str) -> bool:
        parts = path.split("/")
        states = {0}
        for k, rx in enumerate(rxs):
            if rx is None:  # ** : zero or more non-hidden components; at least one when it ends the pattern
                new, active, last = set(), False, k == len(rxs) - 1
                for j in range(len(parts) + 1):
                    if active:
                        new.add(j)
                    active = (active or j in states) and j < len(parts) and not parts[j].startswith(".")
                    if j in states and not last:
                        new.add(j)
                states = new
            else:
                states = {j + 1 for j in states if j < len(parts) and rx.fullmatch(parts[j])}
            if not states:
                return False
        return len(parts) in states

    return match


def _pattern_problem(pattern: object) -> str | None:
    if not isinstance(pattern, str) or not pattern.strip():
        return "a pattern must be a non-empty path or glob"
    if "\\" in pattern or any(ord(c) < 32 for c in pattern):
        return f"pattern {pattern!r} contains a backslash or control character; separate folders with /"
    if pattern.startswith("/") or re.match(r"^[A-Za-z]:", pattern):
        return f"pattern {pattern!r} is absolute; patterns are relative to the repository root"
    if ".." in pattern.split("/"):
        return f"pattern {pattern!r} has a '..' component; patterns cannot leave the repository"
    try:
        glob_matcher(pattern)
    except re.error as exc:
        return f"pattern {pattern!r} is not a valid glob: {exc}"
    return None


def _fetch_into_cache(gitdir: Path, url: str, sha: str) -> bool:
    """Make ``sha`` present in the bare cache repo, fetching only if it is missing; one process at a time.
    False when the fetch worked but the commit is not in the repository."""
    gitdir.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(gitdir.with_name(gitdir.name + ".lock")):
        repo = bare_repository(gitdir)
        if repo.get(sha) is not None:
            return True
        bound_network_waits()
        remote = repo.remotes.create_anonymous(url)
        local = url.lower().startswith("file:")
        attempts = [([f"+{sha}:refs/labrador/{sha}"], 0 if local else 1),  # just the commit, if the server lets us
                    (["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], 0)]
        for k, (refspecs, depth) in enumerate(attempts):
            try:
                bounded = BoundedFetch(MAX_FETCH_BYTES, FETCH_SECONDS, DocumentError)
                remote.fetch(refspecs, callbacks=bounded, depth=depth)
            except pygit2.GitError as exc:
                if k == len(attempts) - 1:
                    raise DocumentError(f"could not fetch {_redact(url)}: {_redact(str(exc))}",
                                        hint=_fetch_hint(str(exc))) from None
                continue
            if repo.get(sha) is not None:
                return True
        return False


def _fetch_hint(error: str) -> str:
    """Say what most likely went wrong: the network, or the repository itself."""
    low = error.lower()
    network = ("resolve", "connect", "timed out", "timeout", "network", "unreachable", "ssl", "proxy")
    if any(w in low for w in network):
        return ("This is a network failure (the host could not be reached), not a problem with the leaf: check "
                "the connection or proxy, or run with --no-documents offline.")
    if any(w in low for w in ("401", "403", "404", "not found", "authentication")):
        return "The repository was not found or is not public: check the URL."
    return "Check the repository URL and your network connection."


def _fetch_once(gitdir: Path, url: str, sha: str) -> None:
    """Fetch at most once per (repo, commit) per process; a failed fetch or a missing commit (perhaps not
    pushed yet) is tried again after FAILURE_TTL seconds, so a long-running bot recovers."""
    when, err, found = _MEMO.get((gitdir, sha), (0.0, None, False))
    if (gitdir, sha) not in _MEMO or (not found and time.monotonic() - when > FAILURE_TTL):
        err, found = None, False
        try:
            found = _fetch_into_cache(gitdir, url, sha)
        except DocumentError as exc:
            err = exc
        except FetchCancelled:
            raise  # not an answer about the repository: never remembered
        except (pygit2.GitError, OSError, ValueError) as exc:
            err = DocumentError(f"could not fetch {_redact(url)}: {_redact(str(exc))}")
        _MEMO[(gitdir, sha)] = (time.monotonic(), err, found)
    if err is not None:
        raise err.copy()


def _resolve_commit(url: str, sha: str, config: Config, local_repo: Path | None) -> tuple[pygit2.Repository, str]:
    """The repository holding ``sha``: this clone for self URLs (no network), else the fetch cache."""
    if _is_self(url, config):
        start = str(local_repo or Path.cwd())
        gitdir = pygit2.discover_repository(start)
        if gitdir is None:
            raise DocumentError(f"{url} is this repository, but no git repository was found at {start}",
                                hint="Run the checker inside a clone of the taxonomy.")
        where = "this clone"
        hint = "The commit is not in this clone; fetch full history (actions/checkout with fetch-depth: 0) " \
               "and make sure the commit is pushed."
    else:
        digest = hashlib.sha256(normalize_url(url).encode()).hexdigest()[:16]
        gitdir = str(config.repo_cache_dir() / "repos" / f"{digest}.git")
        where = _redact(url)
        hint = "Copy the full SHA of a pushed commit: git rev-parse <ref>."
        _fetch_once(Path(gitdir), url, sha)
    repo = pygit2.Repository(gitdir)
    obj = repo.get(sha)
    if obj is None:
        raise DocumentError(f"commit {sha} does not exist in {where}", "document-commit", hint, _KEY_COMMIT)
    try:
        commit = obj.peel(pygit2.Commit)
    except (pygit2.GitError, ValueError, TypeError):
        raise DocumentError(f"{sha} is a {obj.type_str}, not a commit", "document-commit", hint, _KEY_COMMIT) from None
    if _is_self(url, config) and not _reachable(repo, commit.id):
        raise DocumentError(f"commit {sha} is in this clone but not in the history of the checked revision or of "
                            "main: it lives only on another branch, so after a squash merge a fresh clone will "
                            "not have it", "document-commit",
                            "Point at a commit of main (merge the document change first, then use its SHA).",
                            _KEY_COMMIT)
    return repo, str(commit.id)


def _reachable(repo: pygit2.Repository, oid: pygit2.Oid) -> bool:
    """``oid`` is HEAD's or main's (local or origin), or, in the bot's bare cache, a fetched pull request's or
    base's: the revisions a check can be about. A commit only on some other branch is not."""
    tips = []
    if not repo.head_is_unborn and not repo.is_bare:
        tips.append(repo.head.target)
    for name in repo.references:
        if name in ("refs/heads/main", "refs/remotes/origin/main") or name.startswith("refs/labrador/"):
            try:
                tips.append(repo.references[name].peel(pygit2.Commit).id)
            except (pygit2.GitError, ValueError, KeyError):
                continue
    return any(tip == oid or repo.descendant_of(tip, oid) for tip in tips)


def _files(repo: pygit2.Repository, commit: str) -> tuple[list[tuple[str, pygit2.Oid]], bool]:
    """Regular files in the commit's tree, sorted, and whether MAX_FILES cut the walk short."""
    key = (repo.path, commit)
    if key in _FILES:
        return _FILES[key]
    files, stack, seen, cut = [], [("", repo[commit].peel(pygit2.Tree))], 0, False
    while stack and not cut:
        prefix, tree = stack.pop()
        for entry in tree:
            seen += 1
            if seen > MAX_FILES:
                cut = True
                break
            try:
                name, mode = entry.name, entry.filemode
            except (UnicodeDecodeError, ValueError):
                continue
            if not name or name in (".", "..") or "/" in name or "\0" in name or len(prefix) + len(name) > MAX_PATH:
                continue
            if mode == _TREE and (sub := repo.get(entry.id)) is not None:
                stack.append((f"{prefix}{name}/", sub))
            elif mode in _BLOBS:
                files.append((prefix + name, entry.id))
    files.sort()
    if len(_FILES) > 32:
        _FILES.pop(next(iter(_FILES)))
    _FILES[key] = (files, cut)
    return files, cut


def _nearby(pattern: str, files: list[tuple[str, pygit2.Oid]]) -> str:
    literal: list[str] = []
    for comp in pattern.split("/")[:-1]:
        if any(c in comp for c in "*?["):
            break
        if comp not in ("", "."):
            literal.append(comp)
    prefix = "/".join(literal) + "/" if literal else ""
    docs = [p for p, _ in files if p.lower().endswith(SUFFIXES)]
    near = [p for p in docs if p.startswith(prefix) and "/" not in p[len(prefix):]][:5]
    if near:
        return f"Documents in {prefix or 'the repository root'}: {', '.join(near)}."
    if docs:
        return f"No document there; some in the repository: {', '.join(docs[:5])} (use **/ for any depth)."
    return "The commit holds no .md or .pdf file; check the repo URL and the commit."


def _examine(doc: dict, config: Config, local_repo: Path | None
             ) -> tuple[list[DocumentError], list[tuple[str, pygit2.Oid]], pygit2.Repository | None]:
    """Every problem with ``doc``, plus the matched document files and their repository."""
    url, sha, patterns = doc.get("repo"), doc.get("commit"), doc.get("patterns")
    problems = []
    if not _is_self(url, config) and (why := check_repo_url(url, config)):
        hint = f"Use an https:// URL on an allowed host: {', '.join(config.allowed_hosts) or '(none)'} " \
               "(allowed_hosts in labrador.toml)."
        problems.append(DocumentError(why, "document-repo", hint, _KEY_REPO))
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        problems.append(DocumentError(f"commit {str(sha)[:60]!r} is not a full 40-character hex SHA; a short SHA "
                                      "or a branch name is not accepted", "document-commit",
                                      "Use the full SHA: git rev-parse <ref>.", _KEY_COMMIT))
    if not isinstance(patterns, list) or not patterns:
        problems.append(DocumentError("patterns must be a non-empty list of paths or globs", "document-patterns",
                                      'Write e.g. patterns: ["docs/*.md"].', _KEY_PATTERNS))
        patterns = []
    valid = []
    for i, pattern in enumerate(patterns):
        if why := _pattern_problem(pattern):
            problems.append(DocumentError(why, "document-patterns", "Write a glob relative to the repository "
                                          "root, e.g. docs/*.md or docs/**/*.md.", (*_KEY_PATTERNS, i)))
        else:
            valid.append((i, pattern, glob_matcher(pattern)))
    if any(p.check in ("document-repo", "document-commit") for p in problems):
        return problems, [], None
    try:
        repo, commit = _resolve_commit(url, sha.lower(), config, local_repo)
    except DocumentError as exc:
        return [*problems, exc], [], None
    files, cut = _files(repo, commit)
    matched: dict[str, pygit2.Oid] = {}
    for i, pattern, rx in valid:
        hits = [(p, oid) for p, oid in files if rx(p)]
        docs = [(p, oid) for p, oid in hits if p.lower().endswith(SUFFIXES)]
        matched.update(docs)
        if docs:
            continue
        if hits:
            why = f"pattern {pattern!r} matches {len(hits)} file(s) but no .md or .pdf: " \
                  f"{', '.join(p for p, _ in hits[:5])}"
        else:
            why = f"pattern {pattern!r} matches no file at commit {commit[:12]}"
            why += f" (only the first {MAX_FILES:,} entries were searched)" if cut else ""
        hint = _nearby(pattern, files)
        if hits:  # the files are there, in the wrong format: nearby READMEs would be the wrong advice
            hint = (f"Documents must be Markdown (.md) or PDF: convert {hits[0][0]} to Markdown (rename it to .md "
                    "if it is plain text) and commit it, then update the commit SHA.")
        problems.append(DocumentError(why, "document-patterns", hint, (*_KEY_PATTERNS, i)))
    return problems, sorted(matched.items()), repo


def check_documents(report: Report, config: Config, local_repo: Path | None = None) -> list[Finding]:
    """Findings for a knowledge leaf's ``document:`` block, at the offending value; never raises, since the
    block is contributor input and a pygit2 surprise must become a finding, not a crash."""
    doc = report.data.get("document") if isinstance(report.data, dict) else None
    if not isinstance(doc, dict):
        return []  # the schema check reports a missing or malformed block
    try:
        problems = _examine(doc, config, local_repo)[0]
    except FetchCancelled:
        raise  # the caller stopped the work: no verdict at all, rather than a wrong one
    except Exception as exc:
        problems = [DocumentError(f"could not check the documents: {_redact(str(exc)) or type(exc).__name__}")]
    found = []
    for p in problems:
        line, col = report.marks.get(p.key) or report.marks.get(p.key[:2]) or report.marks.get(("document",), (0, 0))
        found.append(Finding(p.check, "error", p.message, line, col, p.hint, report.path))
    return config.enabled(found)


def resolve_documents(document: dict, config: Config, local_repo: Path | None = None) -> list[tuple[str, bytes]]:
    """The .md/.pdf files that ``document`` names, read at its commit and sorted by path, for the trainer to
    chunk; raises DocumentError, naming every problem, rather than silently training on fewer documents."""
    if not isinstance(document, dict):
        raise DocumentError("document must be a mapping with repo, commit and patterns", "document-repo")
    out, total = [], 0
    try:
        problems, matched, repo = _examine(document, config, local_repo)
        if problems:
            first = problems[0]
            raise DocumentError("; ".join(p.message for p in problems), first.check, first.hint, first.key)
        for path, oid in matched:
            size = repo.odb.read_header(oid)[1]
            total += size
            if size > MAX_DOC_BYTES or total > MAX_TOTAL_BYTES:
                raise DocumentError(f"{path} ({size:,} bytes) goes over the document size limits ({MAX_DOC_BYTES:,}"
                                    f" per file, {MAX_TOTAL_BYTES:,} in all)", "document-patterns",
                                    "Split the document or narrow the patterns.", _KEY_PATTERNS)
            out.append((path, repo[oid].data))
    except (DocumentError, FetchCancelled):
        raise
    except Exception as exc:
        raise DocumentError(f"could not resolve the documents: {_redact(str(exc)) or type(exc).__name__}") from None
    return out

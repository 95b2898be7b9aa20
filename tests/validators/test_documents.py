"""validators.documents against real pygit2 repositories made in tmp_path (file:// stands in for the network)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pygit2
import pytest

from labrador.validators import Config, check_file
from labrador.validators import documents as docs
from labrador.validators.documents import (
    DocumentError,
    check_documents,
    check_repo_url,
    normalize_url,
    resolve_documents,
)

SIG = pygit2.Signature("Test", "test@example.com", 1_700_000_000, 0)
FILES = {
    "README.md": b"# readme\n",
    "docs/intro.md": b"# intro\n",
    "docs/guide.MD": b"# guide\n",
    "docs/deep/nested/more.md": b"# more\n",
    "docs/manual.pdf": b"%PDF-1.4\n",
    "notes/only.txt": b"text\n",
    ".hidden/secret.md": b"# hidden\n",
}


def _tree(repo: pygit2.Repository, files: dict[str, bytes | tuple[str, str]]) -> pygit2.Oid:
    """Build nested trees directly; a ("link", target) value becomes a symlink entry."""
    here: dict[str, bytes | tuple[str, str]] = {}
    sub: dict[str, dict] = {}
    for path, value in files.items():
        head, _, rest = path.partition("/")
        if rest:
            sub.setdefault(head, {})[rest] = value
        else:
            here[head] = value
    tb = repo.TreeBuilder()
    for name, value in here.items():
        if isinstance(value, tuple):
            tb.insert(name, repo.create_blob(value[1].encode()), pygit2.enums.FileMode.LINK)
        else:
            tb.insert(name, repo.create_blob(value), pygit2.enums.FileMode.BLOB)
    for name, content in sub.items():
        tb.insert(name, _tree(repo, content), pygit2.enums.FileMode.TREE)
    return tb.write()


def make_repo(path: Path, files: dict, parents: list | None = None) -> str:
    """A repository at ``path`` (created if needed) with a commit of ``files`` on refs/heads/main."""
    repo = pygit2.init_repository(str(path)) if not (path / ".git").exists() else pygit2.Repository(str(path))
    oid = repo.create_commit("refs/heads/main", SIG, SIG, "docs", _tree(repo, files), parents or [])
    return str(oid)


def leaf(repo: str, commit: str, patterns: list[str]) -> bytes:
    seeds = "".join(
        f"  - context: context number {i}\n    questions_and_answers:\n"
        + "".join(f"      - question: question {i}.{j}?\n        answer: answer {i}.{j}\n" for j in range(3))
        for i in range(5))
    pats = "".join(f'    - "{p}"\n' for p in patterns)
    return (f"version: 3\ncreated_by: tester\ndomain: testing\ndocument_outline: test documents\n"
            f"seed_examples:\n{seeds}document:\n  repo: {repo}\n  commit: {commit}\n  patterns:\n{pats}").encode()


def mark_of(text: bytes, needle: str) -> tuple[int, int]:
    for n, line in enumerate(text.decode().split("\n"), 1):
        if needle in line:
            return n, line.index(needle) + 1
    raise AssertionError(needle)


@pytest.fixture
def src(tmp_path: Path) -> tuple[str, str]:
    """(file:// URL, sha) of a source repository holding FILES."""
    path = tmp_path / "src"
    sha = make_repo(path, FILES)
    return f"file://{path}", sha


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return dataclasses.replace(Config(), cache_dir=str(tmp_path / "cache"), allow_file_urls=True)


def check(data: bytes, config: Config, local_repo: Path | None = None):
    report = check_file("knowledge/a/b/qna.yaml", data, config)
    return report, check_documents(report, config, local_repo)


def test_good_leaf_passes(src, cfg):
    url, sha = src
    report, found = check(leaf(url, sha, ["docs/*.md", "docs/*.pdf", "README.md"]), cfg)
    assert report.ok, report.findings
    assert found == []


def test_short_sha_is_refused(src, cfg):
    url, sha = src
    data = leaf(url, sha[:7], ["docs/*.md"])
    _, found = check(data, cfg)
    assert [f.check for f in found] == ["document-commit"]
    assert "short SHA" in found[0].message and "git rev-parse" in found[0].hint
    assert (found[0].line, found[0].column) == mark_of(data, sha[:7])
    assert found[0].path == "knowledge/a/b/qna.yaml"


def test_branch_name_is_refused(src, cfg):
    _, found = check(leaf(src[0], "main", ["docs/*.md"]), cfg)
    assert [f.check for f in found] == ["document-commit"]


def test_unknown_commit(src, cfg):
    data = leaf(src[0], "0123456789abcdef" * 2 + "01234567", ["docs/*.md"])
    _, found = check(data, cfg)
    assert [f.check for f in found] == ["document-commit"]
    assert "does not exist" in found[0].message
    assert found[0].line == mark_of(data, "0123456789abcdef")[0]


@pytest.mark.parametrize("pattern, words", [
    ("../other/*.md", "'..'"),
    ("docs/../../etc/*.md", "'..'"),
    ("/etc/passwd.md", "absolute"),
    ("C:/docs/a.md", "absolute"),
    ("docs\\\\intro.md", "backslash"),
    ("docs/[z-a].md", "not a valid glob"),
])
def test_bad_pattern_syntax(src, cfg, pattern, words):
    url, sha = src
    data = leaf(url, sha, ["docs/*.md", pattern])
    _, found = check(data, cfg)
    assert [f.check for f in found] == ["document-patterns"], found
    assert words in found[0].message
    assert found[0].line == mark_of(data, "\\" if "\\" in pattern else pattern)[0]


def test_pattern_matching_nothing_is_placed_at_the_pattern(src, cfg):
    url, sha = src
    data = leaf(url, sha, ["docs/*.md", "docs/missing-*.md"])
    _, found = check(data, cfg)
    assert [f.check for f in found] == ["document-patterns"]
    f = found[0]
    assert (f.line, f.column) == mark_of(data, '"docs/missing-*.md"')
    assert "matches no file" in f.message
    assert "docs/intro.md" in f.hint and "docs/guide.MD" in f.hint  # nearby documents


def test_pattern_matching_only_txt(src, cfg):
    url, sha = src
    _, found = check(leaf(url, sha, ["notes/*"]), cfg)
    assert [f.check for f in found] == ["document-patterns"]
    assert "no .md or .pdf" in found[0].message and "notes/only.txt" in found[0].message
    assert "convert notes/only.txt to Markdown" in found[0].hint and "README" not in found[0].hint


def test_star_does_not_cross_slash_and_double_star_does(src, cfg):
    url, sha = src

    def paths(*patterns: str) -> list[str]:
        return [p for p, _ in resolve_documents({"repo": url, "commit": sha, "patterns": list(patterns)}, cfg)]

    assert paths("docs/*.md") == ["docs/intro.md"]  # the suffix filter is case-blind, the glob is not
    assert paths("docs/*") == ["docs/guide.MD", "docs/intro.md", "docs/manual.pdf"]
    assert paths("docs/**/*.md") == ["docs/deep/nested/more.md", "docs/intro.md"]
    assert paths("**/*.md") == ["README.md", "docs/deep/nested/more.md", "docs/intro.md"]  # no dot-dirs
    assert paths("docs/**") == ["docs/deep/nested/more.md", "docs/guide.MD", "docs/intro.md", "docs/manual.pdf"]
    assert paths(".hidden/*.md", "docs/[gi]*") == [".hidden/secret.md", "docs/guide.MD", "docs/intro.md"]
    _, found = check(leaf(url, sha, ["*/more.md"]), cfg)
    assert [f.check for f in found] == ["document-patterns"]


def test_symlinks_are_not_files(tmp_path, cfg):
    sha = make_repo(tmp_path / "links", {"secret.md": b"x", "docs/link.md": ("link", "../secret.md")})
    _, found = check(leaf(f"file://{tmp_path / 'links'}", sha, ["docs/*.md"]), cfg)
    assert [f.check for f in found] == ["document-patterns"]


def test_resolve_documents_returns_bytes(src, cfg):
    url, sha = src
    got = resolve_documents({"repo": url, "commit": sha, "patterns": ["docs/*.pdf", "README.md", "docs/*.md"]}, cfg)
    assert got == [("README.md", b"# readme\n"), ("docs/intro.md", b"# intro\n"), ("docs/manual.pdf", b"%PDF-1.4\n")]


def test_resolve_documents_raises_with_a_clear_message(src, cfg):
    url, sha = src
    with pytest.raises(DocumentError, match="matches no file") as info:
        resolve_documents({"repo": url, "commit": sha, "patterns": ["nope/*.md"]}, cfg)
    assert info.value.check == "document-patterns"
    with pytest.raises(DocumentError, match="short SHA"):
        resolve_documents({"repo": url, "commit": "abc123", "patterns": ["*.md"]}, cfg)
    with pytest.raises(DocumentError, match="not an allowed document host"):
        resolve_documents({"repo": "https://evil.example/x", "commit": sha, "patterns": ["*.md"]}, cfg)


def test_host_not_allowed(cfg):
    data = leaf("https://evil.example.com/org/repo", "a" * 40, ["docs/*.md"])
    _, found = check(data, cfg)
    assert [f.check for f in found] == ["document-repo"]
    assert "not an allowed document host" in found[0].message
    assert "github.com" in found[0].hint
    assert (found[0].line, found[0].column) == mark_of(data, "https://evil.example.com")


@pytest.mark.parametrize("url", [
    "https://github.com/org/repo", "https://GitHub.com/org/repo.git", "https://www.github.com/o/r",
    "https://huggingface.co/datasets/o/r",
])
def test_allowed_urls(url):
    assert check_repo_url(url, Config()) is None


@pytest.mark.parametrize("url, words", [
    ("https://github.com.evil.com/o/r", "not an allowed"),
    ("https://evilgithub.com/o/r", "not an allowed"),
    ("https://127.0.0.1/o/r", "loopback"),
    ("https://10.1.2.3/o/r", "private"),
    ("https://[::1]/o/r", "loopback"),
    ("https://[::ffff:127.0.0.1]/o/r", "loopback"),
    ("https://169.254.169.254/latest", "link-local"),
    ("https://localhost/o/r", "loopback"),
    ("https://docs.localhost./o/r", "loopback"),
    ("https://user:pw@github.com/o/r", "password"),
    ("https://token@github.com/o/r", "password"),
    ("http://github.com/o/r", "plain http"),
    ("ssh://git@github.com/o/r", "ssh:// scheme"),
    ("git@github.com:o/r.git", "scp-style"),
    ("github.com:o/r", "scp-style"),
    ("/srv/repos/docs", "local path"),
    ("./docs", "local path"),
    ("file:///etc", "file://"),
    ("https://github.com:99999/o/r", "cannot be parsed"),
    ("https://github.com/o/r evil", "whitespace"),
    ("", "must be a URL"),
    (42, "must be a URL"),
])
def test_refused_urls(url, words):
    why = check_repo_url(url, Config())
    assert why is not None and words in why, why


@pytest.mark.parametrize("url", ["https://127.0.0.1/o/r", "https://10.0.0.5/o/r", "https://[::1]/o/r",
                                 "https://localhost/o/r"])
def test_private_hosts_refused_in_a_leaf(cfg, url):
    _, found = check(leaf(url, "a" * 40, ["docs/*.md"]), cfg)
    assert [f.check for f in found] == ["document-repo"]
    hosts = dataclasses.replace(Config(), allowed_hosts=("127.0.0.1", "10.0.0.5", "::1", "localhost"))
    assert check_repo_url(url, hosts) is not None  # being listed is not enough...
    assert check_repo_url(url, dataclasses.replace(hosts, allow_private_hosts=True)) is None  # ...this is


def test_http_only_for_hosts_listed_with_http():
    config = dataclasses.replace(Config(), allowed_hosts=("github.com", "http://mirror.example"))
    assert check_repo_url("http://mirror.example/o/r", config) is None
    assert check_repo_url("https://mirror.example/o/r", config) is None
    assert "plain http" in check_repo_url("http://github.com/o/r", config)
    assert "plain http" in check_repo_url("http://sub.mirror.example/o/r", config)


def test_file_url_refused_by_default(src, tmp_path):
    url, sha = src
    config = dataclasses.replace(Config(), cache_dir=str(tmp_path / "cache"))
    _, found = check(leaf(url, sha, ["docs/*.md"]), config)
    assert [f.check for f in found] == ["document-repo"]
    assert "file://" in found[0].message
    assert not (tmp_path / "cache").exists()  # refused before any fetch


def test_file_url_fetches_into_the_cache_once(src, cfg, tmp_path):
    url, sha = src
    data = leaf(url, sha, ["docs/*.md"])
    assert check(data, cfg)[1] == []
    cached = list((tmp_path / "cache" / "repos").glob("*.git"))
    assert len(cached) == 1 and pygit2.Repository(str(cached[0])).get(sha) is not None
    assert cached[0].name == docs.hashlib.sha256(normalize_url(url).encode()).hexdigest()[:16] + ".git"
    shutil.move(tmp_path / "src", tmp_path / "gone")  # any new fetch would now fail
    assert check(data, cfg)[1] == []  # remembered in memory
    docs.forget()
    assert check(data, cfg)[1] == []  # found in the on-disk cache, no fetch
    assert resolve_documents({"repo": url, "commit": sha, "patterns": ["docs/*.md"]}, cfg) == [
        ("docs/intro.md", b"# intro\n")]


def test_new_commit_fetches_again_into_the_same_cache(src, cfg, tmp_path):
    url, sha = src
    assert check(leaf(url, sha, ["docs/*.md"]), cfg)[1] == []
    sha2 = make_repo(tmp_path / "src", {**FILES, "docs/new.md": b"# new\n"}, [sha])
    assert check(leaf(url, sha2, ["docs/new.md"]), cfg)[1] == []
    assert len(list((tmp_path / "cache" / "repos").glob("*.git"))) == 1


def test_unreachable_repo_is_a_fetch_finding(tmp_path, cfg):
    data = leaf(f"file://{tmp_path / 'nowhere'}", "b" * 40, ["docs/*.md"])
    _, found = check(data, cfg)
    assert [f.check for f in found] == ["document-fetch"]
    assert "could not fetch" in found[0].message and "nowhere" in found[0].message
    assert found[0].line == mark_of(data, "repo:")[0]


def test_self_url_resolves_from_the_local_clone(tmp_path):
    clone = tmp_path / "taxonomy"
    sha = make_repo(clone, {"knowledge/a/b/qna.yaml": b"x", "docs/self.md": b"# self\n"})
    (clone / "knowledge" / "a").mkdir(parents=True)
    config = dataclasses.replace(Config(), cache_dir=str(tmp_path / "cache"),
                                 self_urls=("https://github.com/org/taxonomy",))
    data = leaf("https://GitHub.com/org/taxonomy.git/", sha, ["docs/*.md"])
    assert check(data, config, clone / "knowledge" / "a")[1] == []
    assert not (tmp_path / "cache").exists()  # no fetch
    got = resolve_documents({"repo": "https://github.com/org/taxonomy", "commit": sha, "patterns": ["docs/*"]},
                            config, clone)
    assert got == [("docs/self.md", b"# self\n")]
    _, found = check(leaf("https://github.com/org/taxonomy", "c" * 40, ["docs/*.md"]), config, clone)
    assert [f.check for f in found] == ["document-commit"]
    assert "fetch-depth: 0" in found[0].hint


def test_self_url_commit_only_on_another_branch_is_refused(tmp_path):
    """Such a commit passes today and is gone after a squash merge in a fresh clone."""
    clone = tmp_path / "taxonomy"
    main_sha = make_repo(clone, {"docs/self.md": b"# self\n"})
    repo = pygit2.Repository(str(clone))
    side = repo.create_commit("refs/heads/docs-branch", SIG, SIG, "docs", _tree(repo, {"docs/new.md": b"# new\n"}),
                              [pygit2.Oid(hex=main_sha)])
    config = dataclasses.replace(Config(), cache_dir=str(tmp_path / "cache"),
                                 self_urls=("https://github.com/org/taxonomy",))
    _, found = check(leaf("https://github.com/org/taxonomy", str(side), ["docs/*.md"]), config, clone)
    assert [f.check for f in found] == ["document-commit"]
    assert "another branch" in found[0].message and "main" in found[0].hint
    repo.references["refs/heads/main"].set_target(side)  # merged: now it is main's
    assert check(leaf("https://github.com/org/taxonomy", str(side), ["docs/*.md"]), config, clone)[1] == []


def test_offline_fetch_says_network_not_public(tmp_path, cfg):
    from labrador.validators.documents import _fetch_hint

    assert "network failure" in _fetch_hint("failed to resolve address for github.com: Name or service not known")
    assert "not public" in _fetch_hint("unexpected http status code: 404")


def test_self_url_without_a_clone(tmp_path):
    config = dataclasses.replace(Config(), self_urls=("https://github.com/org/taxonomy",))
    (tmp_path / "empty").mkdir()
    _, found = check(leaf("https://github.com/org/taxonomy", "c" * 40, ["docs/*.md"]), config, tmp_path / "empty")
    assert [f.check for f in found] == ["document-fetch"]


def test_walk_is_capped(src, cfg, monkeypatch):
    monkeypatch.setattr(docs, "MAX_FILES", 2)
    url, sha = src
    _, found = check(leaf(url, sha, ["docs/deep/nested/more.md"]), cfg)
    assert [f.check for f in found] == ["document-patterns"]
    assert "only the first 2 entries" in found[0].message


@pytest.mark.parametrize("document", [
    {"repo": 12, "commit": None, "patterns": "docs/*.md"},
    {"repo": ["x"], "commit": 1234567, "patterns": [None, 3]},
    {},
])
def test_hostile_shapes_become_findings(cfg, document):
    report = check_file("knowledge/a/b/qna.yaml", leaf("https://github.com/o/r", "a" * 40, ["x"]), cfg)
    report.data["document"] = document
    found = check_documents(report, cfg)
    assert found and all(f.check.startswith("document-") for f in found)
    with pytest.raises(DocumentError):
        resolve_documents(document, cfg)


def test_disabled_checks_are_dropped(cfg):
    config = dataclasses.replace(cfg, disabled_checks=("document-repo",))
    assert check(leaf("https://evil.example/o/r", "a" * 40, ["docs/*.md"]), config)[1] == []


def test_normalize_url():
    assert normalize_url("HTTPS://GitHub.COM/Org/Repo.git/") == "https://github.com/Org/Repo"
    assert normalize_url("https://github.com/org/repo/") == "https://github.com/org/repo"


@pytest.mark.parametrize("pattern", [
    "*.md", "docs/*.md", "docs/*", "docs/**", "docs/**/*.md", "**/*.md", "**", "*/*/*/*.md", "docs/?ntro.md",
    "docs/[!i]*", "docs/[a-h]*", ".hidden/*", ".*/*.md", "docs/**/nested/*.md", "./docs/*.md", "docs//*.md",
    "**/deep/**/*.md", "docs/deep/**/**/more.md",
])
def test_glob_agrees_with_python_glob(tmp_path, pattern):
    import glob

    for path, content in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    found = glob.glob(pattern, root_dir=tmp_path, recursive=True)
    expected = sorted({p.removeprefix("./").replace("//", "/") for p in found if (tmp_path / p).is_file()})
    assert sorted(filter(docs.glob_matcher(pattern), FILES)) == expected


@pytest.mark.parametrize("url", ["https://me:hunter2@github.com/o/r", "me:hunter2@github.com:o/r",
                                 "ssh://me:hunter2@github.com/o/r"])
def test_messages_never_echo_credentials(cfg, url):
    _, found = check(leaf(url, "a" * 40, ["docs/*.md"]), cfg)
    assert found and all("hunter2" not in f.message + f.hint for f in found)


def test_document_size_is_capped(src, cfg, monkeypatch):
    monkeypatch.setattr(docs, "MAX_DOC_BYTES", 4)
    url, sha = src
    with pytest.raises(DocumentError, match="size limits"):
        resolve_documents({"repo": url, "commit": sha, "patterns": ["docs/*.md"]}, cfg)


def test_hostile_patterns_do_not_backtrack():
    import time

    match = docs.glob_matcher("**/" * 12 + "*a" * 30 + "*b")
    path = "x/" * 400 + "a" * 300
    start = time.monotonic()
    assert not match(path)
    assert time.monotonic() - start < 2


def test_missing_commit_is_retried_after_the_ttl(src, cfg, tmp_path, monkeypatch):
    url, sha = src
    later = make_repo(tmp_path / "other", {"docs/late.md": b"# late\n"})
    data = leaf(url, later, ["docs/*.md"])
    assert [f.check for f in check(data, cfg)[1]] == ["document-commit"]
    shutil.rmtree(tmp_path / "src")  # "push" the commit: the source now holds it
    shutil.copytree(tmp_path / "other", tmp_path / "src")
    assert [f.check for f in check(data, cfg)[1]] == ["document-commit"]  # remembered, no new fetch yet
    monkeypatch.setattr(docs, "FAILURE_TTL", -1.0)
    assert check(data, cfg)[1] == []

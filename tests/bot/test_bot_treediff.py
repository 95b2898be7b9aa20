"""Changed leaves from git trees (merge-base..head) and checks that read blobs, on pygit2 repos in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest
from botkit import commit, skill_files

from labrador.bot import checking, gitcache
from labrador.bot.config import Secret
from labrador.bot.forge import HeadMissing
from labrador.validators import Config
from labrador.validators.changes import ChangeError
from labrador.validators.commits import changed_leaves

LINK = pygit2.enums.FileMode.LINK


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path / "r.git"), bare=True)


BASE = {**skill_files("compositional_skills/a/one"), **skill_files("compositional_skills/a/two"),
        **skill_files("foundational_skills/b/three", b"version: 3\ncreated_by: three\n"), "README.md": b"hello\n"}


def test_added_modified_deleted_renamed(repo: pygit2.Repository) -> None:
    base = commit(repo, BASE)
    files = dict(BASE)
    files.update(skill_files("knowledge/new/leaf"))  # added
    files["taxonomy/knowledge/new/leaf/qna.yaml"] = b"version: 3\ncreated_by: someone else entirely\n"
    files["taxonomy/compositional_skills/a/one/qna.yaml"] += b"# edit\n"  # modified
    for name in ("qna.yaml", "attribution.txt"):  # deleted
        del files[f"taxonomy/foundational_skills/b/three/{name}"]
        files[f"taxonomy/compositional_skills/moved/{name}"] = files.pop(f"taxonomy/compositional_skills/a/two/{name}")
    files["README.md"] = b"changed outside the taxonomy\n"
    head = commit(repo, files, [base])
    changes = changed_leaves(repo, base, head)
    assert changes.changed == ["compositional_skills/a/one", "compositional_skills/moved", "knowledge/new/leaf"]
    assert changes.deleted == ["foundational_skills/b/three"]
    assert changes.renamed == [("compositional_skills/a/two", "compositional_skills/moved")]  # moved, not lost
    assert changes.base == base


def test_uses_the_merge_base_not_the_moving_base(repo: pygit2.Repository) -> None:
    base = commit(repo, BASE)
    main_later = commit(repo, {**BASE, **skill_files("knowledge/on_main/leaf")}, [base])
    head = commit(repo, {**BASE, **skill_files("knowledge/in_pr/leaf")}, [base])
    assert changed_leaves(repo, main_later, head).changed == ["knowledge/in_pr/leaf"]


def test_a_leaf_that_only_lost_its_attribution_is_changed(repo: pygit2.Repository) -> None:
    base = commit(repo, BASE)
    files = {k: v for k, v in BASE.items() if k != "taxonomy/compositional_skills/a/one/attribution.txt"}
    assert changed_leaves(repo, base, commit(repo, files, [base])).changed == ["compositional_skills/a/one"]


def test_no_taxonomy_and_unrelated_histories(repo: pygit2.Repository) -> None:
    a = commit(repo, {"README.md": b"x"})
    b = commit(repo, {"README.md": b"y"}, [a])
    assert changed_leaves(repo, a, b).changed == []
    with pytest.raises(ChangeError, match="share no history"):
        changed_leaves(repo, a, commit(repo, {"other": b"z"}))


def test_checks_read_blobs_and_flag_links_strays_and_misnamed_files(repo: pygit2.Repository) -> None:
    base = commit(repo, BASE)
    files = dict(BASE)
    files["taxonomy/compositional_skills/evil/qna.yaml"] = (b"/etc/passwd", LINK)
    files["taxonomy/compositional_skills/evil/attribution.txt"] = b"License of the work: MIT\n"
    files["taxonomy/compositional_skills/a/one/notes.txt"] = b"stray"
    files["taxonomy/compositional_skills/a/one/qna.yaml"] = b"version: 3\ncreated_by: x\n"
    files["taxonomy/compositional_skills/c/qna.yml"] = b"version: 3\n"
    head = commit(repo, files, [base])
    changes = changed_leaves(repo, base, head)
    results, skipped = checking.check_changed(repo, head, "taxonomy", changes.changed, Config(), documents=False)
    assert skipped == 0
    by_path = {r.path: {f.check for f in r.findings} for r, _ in results}
    assert by_path["compositional_skills/evil/qna.yaml"] >= {"symlink"}
    assert "schema" in by_path["compositional_skills/a/one/qna.yaml"]
    assert "leaf-files" in by_path["compositional_skills/a/one/qna.yaml"]
    assert "leaf-filename" in by_path["compositional_skills/c/qna.yaml"]
    data = dict((r.path, d) for r, d in results)
    assert data["compositional_skills/evil/qna.yaml"] is None  # a link is never read, let alone followed
    notes = checking.annotations([r for r, _ in results], "taxonomy")
    assert all(n.path.startswith("taxonomy/compositional_skills/") and n.start_line >= 1 for n in notes)
    assert checking.labels_for(changes.changed + ["knowledge/x", "foundational_skills/y"]) == [
        "foundational", "knowledge", "skill"]


def test_a_valid_leaf_from_blobs_passes(repo: pygit2.Repository) -> None:
    base = commit(repo, BASE)
    head = commit(repo, {**BASE, **skill_files("compositional_skills/new/leaf")}, [base])
    [(report, data)], _ = checking.check_changed(repo, head, "taxonomy", changed_leaves(repo, base, head).changed,
                                                 Config(), documents=False)
    assert report.ok and report.errors == [] and data and data.startswith(b"version: 3")


def test_non_leaf_folders_do_not_use_up_the_leaf_limit(repo: pygit2.Repository) -> None:
    """300 changed non-leaf folders plus one broken leaf: the leaf is still checked (it used to be skipped)."""
    base = commit(repo, BASE)
    files = dict(BASE)
    for i in range(300):
        files[f"taxonomy/aaa/f{i:03d}/notes.txt"] = b"notes"
    files["taxonomy/compositional_skills/zzz/broken/qna.yaml"] = b"version: 3\ncreated_by: x\n"
    head = commit(repo, files, [base])
    changed = changed_leaves(repo, base, head).changed
    results, skipped = checking.check_changed(repo, head, "taxonomy", changed, Config(), documents=False,
                                              max_leaves=1)
    assert skipped == 0 and [r.path for r, _ in results] == ["compositional_skills/zzz/broken/qna.yaml"]
    assert results[0][0].errors
    more = dict(files, **{"taxonomy/compositional_skills/zzz/other/qna.yaml": b"version: 3\n"})
    head2 = commit(repo, more, [head])
    _, skipped = checking.check_changed(repo, head2, "taxonomy", changed_leaves(repo, base, head2).changed,
                                        Config(), documents=False, max_leaves=1)
    assert skipped == 1  # counted, so the check cannot pass


def test_a_link_outside_any_leaf_is_reported_like_the_disk_walk(repo: pygit2.Repository) -> None:
    base = commit(repo, BASE)
    head = commit(repo, {**BASE, "taxonomy/knowledge/history/evil": (b"/etc", LINK)}, [base])
    results, _ = checking.check_changed(repo, head, "taxonomy", changed_leaves(repo, base, head).changed,
                                        Config(), documents=False)
    [(report, data)] = results
    assert report.path == "." and data is None
    assert [(f.check, f.path) for f in report.errors] == [("symlink", "knowledge/history/evil")]


def test_fetch_into_the_bare_cache_and_head_missing(tmp_path: Path) -> None:
    origin = pygit2.init_repository(str(tmp_path / "origin.git"), bare=True)
    base = commit(origin, BASE, ref="refs/heads/main")
    head = commit(origin, {**BASE, **skill_files("knowledge/x/y")}, [base])
    origin.references.create("refs/pull/3/head", pygit2.Oid(hex=head))
    refspecs = ["+refs/pull/3/head:refs/labrador/pull/3", "+refs/heads/main:refs/labrador/base/main"]
    gitdir = gitcache.fetch(tmp_path / "cache", "acme/t", str(origin.path), refspecs, [head, base], Secret("tok"))
    cached = pygit2.Repository(str(gitdir))
    assert cached.is_bare and cached.get(head) is not None and cached.get(base) is not None
    forced = commit(origin, BASE, [base])  # a force-push: the old head is gone from the PR
    origin.references.create("refs/pull/3/head", pygit2.Oid(hex=forced), force=True)
    with pytest.raises(HeadMissing):
        gitcache.fetch(tmp_path / "cache2", "acme/t", str(origin.path), refspecs, [head, base])
    assert gitcache.redact("could not fetch https://x-access-token:ghs_abc@github.com/a/b") == \
        "could not fetch https://github.com/a/b"


def test_a_tree_bomb_is_refused_in_bounded_time(repo: pygit2.Repository) -> None:
    """Fifteen objects that expand to 10**7 paths: refused after the bound, not walked whole."""
    import time

    from labrador.validators.changes import ChangeError as Refused

    base = commit(repo, BASE)
    blob = repo.create_blob(b"x")
    tb = repo.TreeBuilder()
    tb.insert("f", blob, pygit2.enums.FileMode.BLOB)
    level = tb.write()
    for _ in range(7):  # each level holds ten copies of the one below: 10**7 files
        tb = repo.TreeBuilder()
        for i in range(10):
            tb.insert(f"d{i}", level, pygit2.enums.FileMode.TREE)
        level = tb.write()
    base_tree = repo[base].peel(pygit2.Tree)
    tax = repo.TreeBuilder(repo[base_tree["taxonomy"].id])
    tax.insert("bomb", level, pygit2.enums.FileMode.TREE)
    root = repo.TreeBuilder(base_tree)
    root.insert("taxonomy", tax.write(), pygit2.enums.FileMode.TREE)
    head = str(repo.create_commit(None, pygit2.Signature("t", "t@e"), pygit2.Signature("t", "t@e"), "bomb",
                                  root.write(), [pygit2.Oid(hex=base)]))
    started = time.monotonic()
    with pytest.raises(Refused, match="too many files"):
        changed_leaves(repo, base, head)
    assert time.monotonic() - started < 10

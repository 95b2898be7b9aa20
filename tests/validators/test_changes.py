"""``changed_leaves`` against real git repositories built with pygit2 (no git binary, no mocks of git)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pygit2
import pytest

from labrador.validators import changes
from labrador.validators.changes import ChangeError, Changes, changed_leaves, default_base

SIG = pygit2.Signature("Test", "test@example.com", 1_700_000_000, 0)


def write(root: Path, rel: str, text: str = "version: 3\n") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def leaf(root: Path, folder: str, text: str = "version: 3\nseed_examples: []\n") -> None:
    write(root, f"taxonomy/{folder}/qna.yaml", text)
    write(root, f"taxonomy/{folder}/attribution.txt", f"Title of work: {folder}\n")


def commit_all(repo: pygit2.Repository, message: str = "commit") -> pygit2.Oid:
    """``git add -A && git commit``: stage additions, edits and deletions, then commit on HEAD."""
    index = repo.index
    index.add_all()
    for entry in list(index):
        if not Path(repo.workdir, entry.path).exists():
            index.remove(entry.path)
    index.write()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return repo.create_commit("HEAD", SIG, SIG, message, index.write_tree(), parents)


def stage(repo: pygit2.Repository, *paths: str) -> None:
    index = repo.index
    for path in paths:
        if Path(repo.workdir, path).exists():
            index.add(path)
        else:
            index.remove(path)
    index.write()


def branch(repo: pygit2.Repository, name: str) -> None:
    repo.branches.local.create(name, repo.head.peel(pygit2.Commit))
    repo.checkout(f"refs/heads/{name}")


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    """main: two knowledge leaves, one skill, a README outside the taxonomy; HEAD on branch ``feature``."""
    repo = pygit2.init_repository(str(tmp_path), initial_head="main")
    leaf(tmp_path, "knowledge/science/physics")
    leaf(tmp_path, "knowledge/science/chemistry")
    leaf(tmp_path, "compositional_skills/writing/poems")
    write(tmp_path, "README.md", "# taxonomy\n")
    commit_all(repo, "initial")
    branch(repo, "feature")
    return repo


def check(repo: pygit2.Repository, changed: list[str], deleted: list[str] = (), base: str = "main") -> Changes:
    result = changed_leaves(Path(repo.workdir), base)
    assert (result.changed, result.deleted) == (changed, list(deleted))
    return result


def test_nothing_changed(repo: pygit2.Repository) -> None:
    result = check(repo, [])
    assert result.base == str(repo.references["refs/heads/main"].target)


def test_added_leaf_untracked(repo: pygit2.Repository) -> None:
    leaf(Path(repo.workdir), "knowledge/history/rome")
    check(repo, ["knowledge/history/rome"])


def test_modified_qna_unstaged(repo: pygit2.Repository) -> None:
    write(Path(repo.workdir), "taxonomy/knowledge/science/physics/qna.yaml", "version: 3\nchanged: yes\n")
    check(repo, ["knowledge/science/physics"])


def test_staged_change(repo: pygit2.Repository) -> None:
    write(Path(repo.workdir), "taxonomy/compositional_skills/writing/poems/qna.yaml", "version: 3\nx: 1\n")
    stage(repo, "taxonomy/compositional_skills/writing/poems/qna.yaml")
    check(repo, ["compositional_skills/writing/poems"])


def test_staged_then_reverted_in_working_tree_is_no_change(repo: pygit2.Repository) -> None:
    path = Path(repo.workdir, "taxonomy/knowledge/science/physics/qna.yaml")
    original = path.read_text()
    path.write_text("version: 3\nstaged: 1\n")
    stage(repo, "taxonomy/knowledge/science/physics/qna.yaml")
    path.write_text(original)
    check(repo, [])


def test_committed_change_uses_merge_base_not_main_tip(repo: pygit2.Repository) -> None:
    root = Path(repo.workdir)
    fork = repo.head.target
    write(root, "taxonomy/knowledge/science/physics/qna.yaml", "version: 3\nfeature: 1\n")
    commit_all(repo, "feature work")
    repo.checkout("refs/heads/main")
    leaf(root, "knowledge/science/biology")  # main moves on after the feature branched
    write(root, "taxonomy/knowledge/science/chemistry/qna.yaml", "version: 3\nmain: 1\n")
    commit_all(repo, "main moves on")
    repo.checkout("refs/heads/feature")
    assert not (root / "taxonomy/knowledge/science/biology").exists()
    result = check(repo, ["knowledge/science/physics"])
    assert result.base == str(fork)


def test_renamed_leaf_folder(repo: pygit2.Repository) -> None:
    root = Path(repo.workdir, "taxonomy")
    os.rename(root / "knowledge/science/physics", root / "knowledge/science/mechanics")
    result = check(repo, ["knowledge/science/mechanics"], [])  # a move, reported as one, not as a deletion
    assert result.renamed == [("knowledge/science/physics", "knowledge/science/mechanics")]


def test_renamed_leaf_folder_committed(repo: pygit2.Repository) -> None:
    root = Path(repo.workdir, "taxonomy")
    shutil.move(root / "knowledge/science/physics", root / "knowledge/physics")
    commit_all(repo, "move")
    assert check(repo, ["knowledge/physics"], []).renamed == [("knowledge/science/physics", "knowledge/physics")]


def test_deleted_leaf(repo: pygit2.Repository) -> None:
    shutil.rmtree(Path(repo.workdir, "taxonomy/knowledge/science/chemistry"))
    check(repo, [], ["knowledge/science/chemistry"])


def test_deleted_whole_branch(repo: pygit2.Repository) -> None:
    shutil.rmtree(Path(repo.workdir, "taxonomy/knowledge"))
    commit_all(repo, "drop knowledge")
    check(repo, [], ["knowledge/science/chemistry", "knowledge/science/physics"])


def test_deleted_qna_with_attribution_left_is_deleted(repo: pygit2.Repository) -> None:
    Path(repo.workdir, "taxonomy/knowledge/science/chemistry/qna.yaml").unlink()
    check(repo, [], ["knowledge/science/chemistry"])


def test_changed_attribution_only(repo: pygit2.Repository) -> None:
    write(Path(repo.workdir), "taxonomy/knowledge/science/physics/attribution.txt", "Title of work: new\n")
    check(repo, ["knowledge/science/physics"])


def test_deleted_attribution_marks_leaf_changed(repo: pygit2.Repository) -> None:
    Path(repo.workdir, "taxonomy/knowledge/science/physics/attribution.txt").unlink()
    check(repo, ["knowledge/science/physics"])


def test_stray_and_misnamed_files_mark_folder(repo: pygit2.Repository) -> None:
    root = Path(repo.workdir)
    write(root, "taxonomy/knowledge/science/physics/notes.md", "stray\n")
    write(root, "taxonomy/knowledge/geography/qna.yml", "version: 3\n")  # misnamed new leaf
    check(repo, ["knowledge/geography", "knowledge/science/physics"])


def test_qna_renamed_to_qna_yml_is_changed_and_deleted(repo: pygit2.Repository) -> None:
    folder = Path(repo.workdir, "taxonomy/knowledge/science/physics")
    os.rename(folder / "qna.yaml", folder / "qna.yml")
    check(repo, ["knowledge/science/physics"], ["knowledge/science/physics"])


def test_touched_but_identical_file_is_not_reported(repo: pygit2.Repository) -> None:
    path = Path(repo.workdir, "taxonomy/knowledge/science/physics/qna.yaml")
    path.write_text(path.read_text())
    os.utime(path, (1_800_000_000, 1_800_000_000))  # stat differs from the index: content decides
    check(repo, [])


def test_files_outside_taxonomy_are_ignored(repo: pygit2.Repository) -> None:
    root = Path(repo.workdir)
    write(root, "README.md", "# changed\n")
    write(root, "docs/knowledge/x/qna.yaml")
    write(root, "taxonomy2/knowledge/y/qna.yaml")
    write(root, "taxonomy/README.md", "top-level files belong to no leaf\n")
    check(repo, [])


def test_gitignored_files_are_not_reported(repo: pygit2.Repository) -> None:
    root = Path(repo.workdir)
    write(root, ".gitignore", "*.swp\nscratch/\n")
    commit_all(repo, "ignore rules")
    write(root, "taxonomy/knowledge/science/physics/.qna.yaml.swp", "editor junk\n")
    write(root, "taxonomy/knowledge/scratch/draft/qna.yaml")
    write(root, "taxonomy/.gitignore", "tmp/\n")  # top-level file: no leaf folder of its own
    write(root, "taxonomy/compositional_skills/writing/tmp/qna.yaml")
    check(repo, [])


def test_new_top_level_folder_in_taxonomy(repo: pygit2.Repository) -> None:
    leaf(Path(repo.workdir), "foundational_skills/reasoning/logic")
    check(repo, ["foundational_skills/reasoning/logic"])


def test_base_as_remote_branch_tag_and_sha(repo: pygit2.Repository) -> None:
    main = repo.references["refs/heads/main"].target
    repo.references.create("refs/remotes/origin/main", main)
    repo.references.create("refs/tags/v1", main)
    leaf(Path(repo.workdir), "knowledge/history/rome")
    for base in ("origin/main", "v1", str(main), str(main)[:10], "main"):
        assert check(repo, ["knowledge/history/rome"], base=base).base == str(main)


def test_base_falls_back_to_origin_branch(repo: pygit2.Repository) -> None:
    main = repo.references["refs/heads/main"].target
    repo.references.create("refs/remotes/origin/trunk", main)
    leaf(Path(repo.workdir), "knowledge/history/rome")
    assert check(repo, ["knowledge/history/rome"], base="trunk").base == str(main)


def test_unknown_base_names_the_ref(repo: pygit2.Repository) -> None:
    with pytest.raises(ChangeError, match="'upstream-main' not found.*git fetch origin upstream-main"):
        changed_leaves(Path(repo.workdir), "upstream-main")


def test_not_a_repository(tmp_path: Path) -> None:
    leaf(tmp_path, "knowledge/a")
    with pytest.raises(ChangeError, match="not a git repository"):
        changed_leaves(tmp_path, "main")


def test_empty_repository_reports_everything(tmp_path: Path) -> None:
    pygit2.init_repository(str(tmp_path), initial_head="main")
    leaf(tmp_path, "knowledge/a")
    leaf(tmp_path, "compositional_skills/b/c")
    write(tmp_path, "outside/qna.yaml")
    result = changed_leaves(tmp_path, "main")
    assert result == Changes(changed=["compositional_skills/b/c", "knowledge/a"], deleted=[], base="")


def test_taxonomy_at_repository_root(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path), initial_head="main")
    write(tmp_path, "knowledge/a/qna.yaml")
    write(tmp_path, "knowledge/b/qna.yaml")
    write(tmp_path, "README.md")
    commit_all(repo)
    write(tmp_path, "knowledge/a/qna.yaml", "version: 3\nnew: 1\n")
    write(tmp_path, "README.md", "changed, but not a leaf\n")
    (tmp_path / "knowledge/b/qna.yaml").unlink()
    for taxonomy_dir in ("", ".", "./"):
        result = changed_leaves(tmp_path, "main", taxonomy_dir=taxonomy_dir)
        assert (result.changed, result.deleted) == (["knowledge/a"], ["knowledge/b"])


def test_nested_taxonomy_dir(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path), initial_head="main")
    write(tmp_path, "data/taxonomy/knowledge/a/qna.yaml")
    commit_all(repo)
    write(tmp_path, "data/taxonomy/knowledge/a/qna.yaml", "version: 3\nnew: 1\n")
    write(tmp_path, "data/taxonomy/knowledge/b/qna.yaml")
    write(tmp_path, "data/other/knowledge/c/qna.yaml")
    result = changed_leaves(tmp_path, "main", taxonomy_dir="data/taxonomy/")
    assert result.changed == ["knowledge/a", "knowledge/b"]


def test_corrupt_index_is_a_change_error(repo: pygit2.Repository) -> None:
    Path(repo.path, "index").write_bytes(b"DIRC garbage")
    with pytest.raises(ChangeError, match="cannot compare .*'main'.*git status"):
        changed_leaves(Path(repo.workdir), "main")


def test_missing_taxonomy_dir_is_no_change(repo: pygit2.Repository) -> None:
    assert changed_leaves(Path(repo.workdir), "main", taxonomy_dir="nowhere").changed == []


def test_fast_path_is_available() -> None:
    """The pathspec-limited diff uses pygit2's cffi layer: a pygit2 upgrade that moves it must be noticed."""
    assert changes._NATIVE


def test_public_api_fallback_agrees(repo: pygit2.Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(repo.workdir)
    leaf(root, "knowledge/history/rome")
    write(root, "taxonomy/knowledge/science/physics/attribution.txt", "Title of work: new\n")
    shutil.rmtree(root / "taxonomy/knowledge/science/chemistry")
    write(root, "other/file.txt")
    native = changed_leaves(root, "main")
    monkeypatch.setattr(changes, "_NATIVE", False)
    assert changed_leaves(root, "main") == native
    assert native.changed == ["knowledge/history/rome", "knowledge/science/physics"]


def test_many_folders_single_and_parallel_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = pygit2.init_repository(str(tmp_path), initial_head="main")
    for i in range(40):
        leaf(tmp_path, f"knowledge/area{i % 7}/leaf{i}")
    commit_all(repo)
    for i in (3, 17, 33):
        write(tmp_path, f"taxonomy/knowledge/area{i % 7}/leaf{i}/qna.yaml", f"version: 3\nn: {i}\n")
    shutil.rmtree(tmp_path / "taxonomy/knowledge/area2")
    leaf(tmp_path, "knowledge/area9/new")
    results = []
    for workers in (1, 4):
        monkeypatch.setattr(changes, "_MAX_WORKERS", workers)
        monkeypatch.setattr(changes, "_cpus", lambda: 4)
        results.append(changed_leaves(tmp_path, "main"))
    assert results[0] == results[1]
    assert results[0].changed == [
        "knowledge/area3/leaf17",
        "knowledge/area3/leaf3",
        "knowledge/area5/leaf33",
        "knowledge/area9/new",
    ]
    assert results[0].deleted == [f"knowledge/area2/leaf{i}" for i in sorted(range(2, 40, 7), key=str)]


def test_default_base(tmp_path: Path, repo: pygit2.Repository) -> None:
    assert default_base(Path(repo.workdir)) == "main"
    other = pygit2.init_repository(str(tmp_path / "other"), initial_head="trunk")
    write(tmp_path / "other", "a.txt")
    commit_all(other)
    assert default_base(tmp_path / "other") is None
    other.references.create("refs/remotes/origin/main", other.head.target)
    assert default_base(tmp_path / "other") == "origin/main"  # what a pull request targets
    assert default_base(tmp_path / "nowhere") is None
    repo.references.create("refs/remotes/origin/main", repo.head.target)
    assert default_base(Path(repo.workdir)) == "origin/main"  # preferred over the local main too

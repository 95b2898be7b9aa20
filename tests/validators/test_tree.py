"""Tree-level checks: folder walk, misnamed and stray files, attribution, symlinks and the verdict cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import labrador.validators.tree as tree
from labrador.validators import Config
from labrador.validators.cache import CheckCache
from labrador.validators.tree import check_tree

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "taxonomy/compositional_skills/writing/freeform/haiku"
GOOD_KNOWLEDGE = ROOT / "taxonomy/knowledge/history/printing_press"
LEAF = "compositional_skills/writing/freeform/haiku"
SECRET = "TOPSECRET_d41d8cd98f00b204"


@pytest.fixture
def tax(tmp_path: Path) -> Path:
    root = tmp_path / "taxonomy"
    shutil.copytree(GOOD, root / LEAF)
    shutil.copytree(GOOD_KNOWLEDGE, root / "knowledge/history/printing_press")
    return root


def findings(reports):
    return [f for r in reports for f in r.findings]


def by_check(reports, check_id):
    return [f for f in findings(reports) if f.check == check_id]


def test_good_tree_is_clean(tax):
    reports = check_tree(tax, Config())
    assert [r.path for r in reports] == ["compositional_skills/writing/freeform/haiku/qna.yaml",
                                         "knowledge/history/printing_press/qna.yaml"]
    assert findings(reports) == []


def test_hidden_folders_are_not_walked(tax):
    shutil.copytree(GOOD, tax / ".git/compositional_skills/x/y")
    assert findings(check_tree(tax, Config())) == []
    assert len(check_tree(tax, Config())) == 2


@pytest.mark.parametrize("name", ["qna.yml", "QnA.yaml", "QNA.YML"])
def test_misnamed_leaf_file_is_an_error_not_skipped(tax, name):
    (tax / LEAF / "qna.yaml").rename(tax / LEAF / name)
    reports = check_tree(tax, Config())
    hits = by_check(reports, "leaf-filename")
    assert len(hits) == 1
    assert hits[0].severity == "error"
    assert hits[0].path == f"{LEAF}/{name}"
    assert "qna.yaml" in hits[0].hint
    assert any(r.path == f"{LEAF}/qna.yaml" and not r.ok for r in reports)


def test_misnamed_beside_a_real_leaf_file(tax):
    shutil.copy(tax / LEAF / "qna.yaml", tax / LEAF / "qna.yml")
    assert [f.path for f in by_check(check_tree(tax, Config()), "leaf-filename")] == [f"{LEAF}/qna.yml"]


@pytest.mark.parametrize("name", ["notes.md", "document.pdf", ".DS_Store"])
def test_stray_file_in_leaf(tax, name):
    (tax / LEAF / name).write_text("stray\n")
    hits = by_check(check_tree(tax, Config()), "leaf-files")
    assert [(f.path, f.severity) for f in hits] == [(f"{LEAF}/{name}", "error")]
    assert repr(name) in hits[0].message


def test_missing_attribution(tax):
    (tax / LEAF / "attribution.txt").unlink()
    hits = by_check(check_tree(tax, Config()), "attribution")
    assert [(f.path, f.severity) for f in hits] == [(f"{LEAF}/attribution.txt", "error")]


def test_empty_attribution(tax):
    (tax / LEAF / "attribution.txt").write_text("  \n\n")
    hits = by_check(check_tree(tax, Config()), "attribution")
    assert len(hits) == 1 and "empty" in hits[0].message


def _set_license(tax: Path, value: str) -> int:
    path = tax / LEAF / "attribution.txt"
    lines = path.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if line.lower().startswith("license of the work"))
    lines[n] = f"License of the work: {value}"
    path.write_text("\n".join(lines) + "\n")
    return n + 1


def test_license_not_allowed(tax):
    line = _set_license(tax, "GPL-3.0")
    hits = by_check(check_tree(tax, Config()), "attribution-license")
    assert len(hits) == 1
    f = hits[0]
    assert (f.path, f.severity, f.line, f.column) == (f"{LEAF}/attribution.txt", "error", line, 1)
    assert "'GPL-3.0'" in f.message
    assert "CC-BY-4.0" in f.hint


def test_license_wrong_case_hints_the_spelling(tax):
    line = _set_license(tax, "cc-by-4.0")
    (f,) = by_check(check_tree(tax, Config()), "attribution-license")
    assert f.line == line
    assert f.hint == "Write it as 'CC-BY-4.0'."


def test_license_allowed_by_config(tax):
    _set_license(tax, "GPL-3.0")
    assert findings(check_tree(tax, Config(licenses=("GPL-3.0", "CC-BY-4.0")))) == []


def test_missing_license_line_and_fields(tax):
    (tax / LEAF / "attribution.txt").write_text("Title of work: x\n")
    reports = check_tree(tax, Config())
    assert len(by_check(reports, "attribution-license")) == 1
    assert {f.message for f in by_check(reports, "attribution-fields")} == {
        "no 'Link to work:' line", "no 'Revision:' line", "no 'Creator names:' line"}
    assert all(f.severity == "warning" for f in by_check(reports, "attribution-fields"))


def test_attribution_not_utf8(tax):
    (tax / LEAF / "attribution.txt").write_bytes(b"Title: caf\xe9\n")
    assert "UTF-8" in by_check(check_tree(tax, Config()), "attribution")[0].message


def _secret_target(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "secret.yaml"
    # if this were ever read, the unknown key would appear in a schema finding
    target.write_text(f"version: 3\n{SECRET}: {SECRET}\n")
    return target


def test_symlinked_leaf_file_outside_is_reported_and_not_read(tax, tmp_path, monkeypatch):
    target = _secret_target(tmp_path)
    leaf = tax / "compositional_skills/writing/linked"
    leaf.mkdir(parents=True)
    os.symlink(target, leaf / "qna.yaml")
    shutil.copy(GOOD / "attribution.txt", leaf / "attribution.txt")
    seen: list[bytes] = []
    from labrador.validators import folder as folder_module

    real = folder_module.check_file

    def spy(relpath, data, config=None, **kw):
        seen.append(data)
        return real(relpath, data, config, **kw)

    opened: list[str] = []
    real_read = tree._read
    monkeypatch.setattr(folder_module, "check_file", spy)
    monkeypatch.setattr(tree, "_read", lambda entry: opened.append(entry.path) or real_read(entry))
    reports = check_tree(tax, Config())
    hits = by_check(reports, "symlink")
    assert [(f.path, f.severity) for f in hits] == [("compositional_skills/writing/linked/qna.yaml", "error")]
    assert "outside the taxonomy" in hits[0].message
    everything = json.dumps([f.to_dict() for f in findings(reports)])
    assert SECRET not in everything
    assert all(SECRET.encode() not in d for d in seen)
    assert not any(str(target) in p or p.endswith("linked/qna.yaml") for p in opened)


def test_symlink_inside_the_tree_is_still_an_error(tax):
    leaf = tax / "compositional_skills/writing/alias"
    leaf.mkdir(parents=True)
    os.symlink(tax / LEAF / "qna.yaml", leaf / "qna.yaml")
    (f,) = by_check(check_tree(tax, Config()), "symlink")
    assert "inside the taxonomy" in f.message


def test_symlinked_folder_is_not_followed(tax, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(GOOD, outside / "leaf")
    (outside / "leaf/qna.yaml").write_text(f"version: 3\n{SECRET}: 1\n")
    os.symlink(outside, tax / "compositional_skills/linked_dir", target_is_directory=True)
    reports = check_tree(tax, Config())
    assert [f.path for f in by_check(reports, "symlink")] == ["compositional_skills/linked_dir"]
    assert not any(r.path.startswith("compositional_skills/linked_dir/") for r in reports)
    assert SECRET not in json.dumps([f.to_dict() for f in findings(reports)])


def test_symlinked_branch_at_top_level(tax, tmp_path):
    outside = tmp_path / "fake_branch"
    shutil.copytree(GOOD, outside / "x/leaf")
    os.symlink(outside, tax / "foundational_skills", target_is_directory=True)
    reports = check_tree(tax, Config())
    assert [f.path for f in by_check(reports, "symlink")] == ["foundational_skills"]
    assert not any(r.path.startswith("foundational_skills/") for r in reports)


def test_only_restricts_the_walk(tax):
    (tax / "knowledge/history/printing_press/extra.txt").write_text("x")
    reports = check_tree(tax, Config(), only=[LEAF])
    assert [r.path for r in reports] == [f"{LEAF}/qna.yaml"]
    assert findings(reports) == []


# ---------------------------------------------------------------- cache


def _dirty(tax: Path) -> None:
    """Give the tree findings worth caching: a warning, an error and a stray file."""
    qna = tax / LEAF / "qna.yaml"
    qna.write_text(qna.read_text().replace("Write a haiku about the first snow of winter.",
                                           "Write a haiku about the first snow of winter.   "))
    (tax / "knowledge/history/printing_press/notes.md").write_text("x")


def _key(f):
    return (f.path, f.line, f.column, f.check, f.severity, f.message, f.hint)


def test_cache_hit_returns_identical_findings_without_checking(tax, tmp_path, monkeypatch):
    _dirty(tax)
    path = tmp_path / "cache/check.json"
    cache = CheckCache(path)
    first = check_tree(tax, Config(), cache=cache)
    cache.save()
    assert path.is_file()
    assert {f.check for f in findings(first)} == {"trailing-spaces", "leaf-files"}

    def boom(*args, **kwargs):
        raise AssertionError("check_file called on a cache hit")

    monkeypatch.setattr(tree, "check_leaf_folder", boom)
    second = check_tree(tax, Config(), cache=CheckCache(path))
    assert [r.path for r in second] == [r.path for r in first]
    assert [_key(f) for f in findings(second)] == [_key(f) for f in findings(first)]


def test_cache_is_invalidated_by_a_changed_byte(tax, tmp_path, monkeypatch):
    path = tmp_path / "check.json"
    cache = CheckCache(path)
    check_tree(tax, Config(), cache=cache)
    cache.save()
    qna = tax / LEAF / "qna.yaml"
    data = bytearray(qna.read_bytes())
    data[data.index(b"Soft flakes")] = ord("s")
    qna.write_bytes(bytes(data))
    calls: list[str] = []
    real = tree.check_leaf_folder
    monkeypatch.setattr(tree, "check_leaf_folder",
                        lambda rel, files, c, **kw: calls.append(f"{rel}/qna.yaml") or real(rel, files, c, **kw))
    check_tree(tax, Config(), cache=CheckCache(path))
    assert calls == [f"{LEAF}/qna.yaml"]


def test_cache_is_invalidated_by_attribution_and_config(tax, tmp_path, monkeypatch):
    path = tmp_path / "check.json"
    cache = CheckCache(path)
    check_tree(tax, Config(), cache=cache)
    cache.save()
    _set_license(tax, "GPL-3.0")
    calls: list[str] = []
    real = tree.check_leaf_folder
    monkeypatch.setattr(tree, "check_leaf_folder",
                        lambda rel, files, c, **kw: calls.append(f"{rel}/qna.yaml") or real(rel, files, c, **kw))
    cache = CheckCache(path)
    reports = check_tree(tax, Config(), cache=cache)
    assert calls == [f"{LEAF}/qna.yaml"] and len(by_check(reports, "attribution-license")) == 1
    calls.clear()
    check_tree(tax, Config(max_qna_words=10), cache=cache)
    assert len(calls) == 2


def test_stray_file_added_invalidates_the_cache(tax, tmp_path):
    path = tmp_path / "check.json"
    cache = CheckCache(path)
    check_tree(tax, Config(), cache=cache)
    (tax / LEAF / "notes.txt").write_text("x")
    assert len(by_check(check_tree(tax, Config(), cache=cache), "leaf-files")) == 1


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"null"])
def test_corrupt_cache_file_is_ignored(tax, tmp_path, content):
    _dirty(tax)
    path = tmp_path / "check.json"
    path.write_bytes(content)
    cache = CheckCache(path)
    reports = check_tree(tax, Config(), cache=cache)
    assert {f.check for f in findings(reports)} == {"trailing-spaces", "leaf-files"}
    cache.save()
    assert isinstance(json.loads(path.read_text()), dict)


def test_cache_with_garbage_entries_is_ignored(tax, tmp_path, monkeypatch):
    _dirty(tax)
    path = tmp_path / "check.json"
    cache = CheckCache(path)
    check_tree(tax, Config(), cache=cache)
    cache.save()
    data = json.loads(path.read_text())
    assert len(data) == 2
    path.write_text(json.dumps({k: [{"bogus": 1}] if i % 2 else 7 for i, k in enumerate(data)}))
    calls: list[str] = []
    real = tree.check_leaf_folder
    monkeypatch.setattr(tree, "check_leaf_folder",
                        lambda rel, files, c, **kw: calls.append(f"{rel}/qna.yaml") or real(rel, files, c, **kw))
    reports = check_tree(tax, Config(), cache=CheckCache(path))
    assert len(calls) == 2
    assert {f.check for f in findings(reports)} == {"trailing-spaces", "leaf-files"}

"""Time ``changed_leaves`` on a taxonomy of 10,000 leaves and 2,000 commits (target: < 200 ms).

Why a script and not a test: building the repository takes a while, so it is built once and cached in
``--workdir``; the timing then runs against a feature branch with a handful of changed leaves, committed,
staged, unstaged and untracked, which is what ``labrador check`` sees on a contributor's machine or in CI.

    .venv/bin/python benchmarks/bench_changes.py [--workdir DIR] [--runs 20] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import time
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode

from labrador.validators import changes
from labrador.validators.changes import changed_leaves

LEAVES = 10_000
COMMITS = 2_000
BRANCHES = ("knowledge", "compositional_skills", "foundational_skills")
SIG = pygit2.Signature("Bench", "bench@example.com", 1_700_000_000, 0)
WORDS = "the model learns from seed examples written by contributors about many topics and skills".split()


def leaf_dir(i: int) -> str:
    return f"{BRANCHES[i % 3]}/area{i % 20:02d}/topic{i // 20 % 10}/leaf{i:05d}"


def qna(i: int, revision: int = 0) -> bytes:
    """A plausible ~1.5 KB qna.yaml, different per leaf and revision."""
    rng = random.Random(i * 1_000 + revision)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    lines = ["version: 3", "created_by: bench", f"task_description: {words(8)} {i} r{revision}", "seed_examples:"]
    for _ in range(5):
        lines += [f"  - question: {words(12)}?", f"    answer: {words(25)}."]
    return ("\n".join(lines) + "\n").encode()


def attribution(i: int) -> bytes:
    return f"Title of work: leaf {i}\nLicense of the work: CC-BY-4.0\nCreator names: bench\n".encode()


class Dir:
    """A mutable tree: only folders touched since the last write are re-written (keeps 2,000 commits fast)."""

    def __init__(self) -> None:
        self.children: dict[str, Dir | tuple[pygit2.Oid, int]] = {}
        self.oid: pygit2.Oid | None = None

    def _walk(self, parts: list[str]) -> Dir:
        node = self
        for part in parts:
            node.oid = None
            child = node.children.setdefault(part, Dir())
            assert isinstance(child, Dir)
            node = child
        node.oid = None
        return node

    def put(self, path: str, oid: pygit2.Oid) -> None:
        *parts, name = path.split("/")
        self._walk(parts).children[name] = (oid, FileMode.BLOB)

    def drop_dir(self, path: str) -> None:
        *parts, name = path.split("/")
        del self._walk(parts).children[name]

    def write(self, repo: pygit2.Repository) -> pygit2.Oid:
        if self.oid is None:
            builder = repo.TreeBuilder()
            for name, child in self.children.items():
                if isinstance(child, Dir):
                    builder.insert(name, child.write(repo), FileMode.TREE)
                else:
                    builder.insert(name, *child)
            self.oid = builder.write()
        return self.oid


def put_leaf(repo: pygit2.Repository, root: Dir, i: int, revision: int = 0, name: str | None = None) -> str:
    folder = "taxonomy/" + (name or leaf_dir(i))
    root.put(f"{folder}/qna.yaml", repo.create_blob(qna(i, revision)))
    root.put(f"{folder}/attribution.txt", repo.create_blob(attribution(i)))
    return folder


def commit(repo: pygit2.Repository, root: Dir, message: str, parents: list[pygit2.Oid]) -> pygit2.Oid:
    return repo.create_commit(None, SIG, SIG, message, root.write(repo), parents)


def build(path: Path) -> dict[str, object]:
    """Create the repository and the feature branch; return the answer ``changed_leaves`` must give."""
    started = time.perf_counter()
    shutil.rmtree(path, ignore_errors=True)
    repo = pygit2.init_repository(str(path), initial_head="main")
    root = Dir()
    root.put("README.md", repo.create_blob(b"# bench taxonomy\n"))
    rng = random.Random(0)
    per = LEAVES // COMMITS
    revisions: dict[int, int] = {}
    parents: list[pygit2.Oid] = []
    for c in range(COMMITS):
        for i in range(c * per, (c + 1) * per):
            put_leaf(repo, root, i)
        if c:  # history also edits old leaves, as a real taxonomy's does
            old = rng.randrange(c * per)
            revisions[old] = revisions.get(old, 0) + 1
            put_leaf(repo, root, old, revisions[old])
        parents = [commit(repo, root, f"commit {c}", parents)]
    tip = parents[0]
    repo.references.create("refs/heads/main", tip, force=True)
    repo.pack()  # a clone is packed: read trees from a pack, as in real use
    for loose in (path / ".git" / "objects").glob("[0-9a-f][0-9a-f]"):
        shutil.rmtree(loose)
    repo = pygit2.Repository(str(path))
    built = time.perf_counter()
    repo.checkout_head(strategy=CheckoutStrategy.FORCE)
    checked_out = time.perf_counter()

    # main moves on after the feature branched: its new leaf must NOT be reported
    put_leaf(repo, root, LEAVES, name="knowledge/main_only/leaf")
    repo.references.create("refs/heads/main", commit(repo, root, "main moves on", [tip]), force=True)
    root.drop_dir("taxonomy/knowledge/main_only")

    modified = [leaf_dir(i) for i in (11, 2222, 4444, 6666, 8888)]
    added = ["knowledge/new/committed", "compositional_skills/new/untracked"]
    deleted = leaf_dir(9999)
    for i in (11, 2222, 4444):
        put_leaf(repo, root, i, 99)
    put_leaf(repo, root, LEAVES + 1, name=added[0])
    root.drop_dir(f"taxonomy/{deleted}")
    repo.references.create("refs/heads/feature", commit(repo, root, "feature", [tip]))
    repo.checkout("refs/heads/feature")
    work = path / "taxonomy"
    (work / modified[3] / "qna.yaml").write_bytes(qna(6666, 99))  # unstaged
    (work / modified[4] / "qna.yaml").write_bytes(qna(8888, 99))  # staged
    (work / added[1]).mkdir(parents=True)
    (work / added[1] / "qna.yaml").write_bytes(qna(LEAVES + 2))  # untracked
    (work / added[1] / "attribution.txt").write_bytes(attribution(LEAVES + 2))
    time.sleep(0.05)  # write the index after the files, so its stat cache is not racy
    index = repo.index
    index.add(f"taxonomy/{modified[4]}/qna.yaml")
    index.write()
    print(
        f"built {LEAVES} leaves / {COMMITS} commits in {built - started:.1f} s, "
        f"checkout {checked_out - built:.1f} s, feature {time.perf_counter() - checked_out:.1f} s"
    )
    return {"changed": sorted(modified + added), "deleted": [deleted], "base": str(tip)}


def timed(repo: Path, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per call; CPU time shows the work when other jobs share the machine."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        changed_leaves(repo, "main")
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def summary(times: list[float]) -> str:
    p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
    return f"min {min(times):.1f} ms, median {statistics.median(times):.1f} ms, p90 {p90:.1f} ms"


def load() -> str:
    """Other jobs on the machine skew wall times; say how busy it was."""
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/labrador-bench/changes"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true", help="build the repository again")
    parser.add_argument("--compare", action="store_true", help="also time one worker and the public-API fallback")
    parser.add_argument("--target-ms", type=float, default=200.0, help="exit 1 when the median is slower")
    args = parser.parse_args()
    repo, answer_file = args.workdir / "repo", args.workdir / "expected.json"
    if args.rebuild or not answer_file.exists():
        args.workdir.mkdir(parents=True, exist_ok=True)
        answer_file.unlink(missing_ok=True)
        answer_file.write_text(json.dumps(build(repo)))
    expected = json.loads(answer_file.read_text())

    print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, {platform.machine()}, {load()}")
    print(f"python {platform.python_version()}, pygit2 {pygit2.__version__}, libgit2 {pygit2.LIBGIT2_VERSION}")
    t0 = time.perf_counter()
    result = changed_leaves(repo, "main")
    print(f"first call: {(time.perf_counter() - t0) * 1000:.1f} ms")
    got = {"changed": result.changed, "deleted": result.deleted, "base": result.base}
    assert got == expected, f"wrong answer:\n got      {got}\n expected {expected}"
    print(f"answer ok: {len(result.changed)} changed, {len(result.deleted)} deleted, base {result.base[:12]}")
    wall, cpu = timed(repo, args.runs)
    print(f"changed_leaves x{args.runs}: wall {summary(wall)}; cpu {summary(cpu)}")
    if args.compare:
        variants = {"one worker": ("_MAX_WORKERS", 1), "public-API fallback": ("_NATIVE", False)}
        for label, (name, value) in variants.items():
            saved = getattr(changes, name)
            setattr(changes, name, value)
            try:
                assert changed_leaves(repo, "main") == result
                wall_v, cpu_v = timed(repo, args.runs)
                print(f"{label} x{args.runs}: wall {summary(wall_v)}; cpu {summary(cpu_v)}")
            finally:
                setattr(changes, name, saved)
    print(f"after: {load()}")
    median = statistics.median(wall)
    verdict = "meets" if median < args.target_ms else "MISSES"
    print(f"median {median:.1f} ms {verdict} the {args.target_ms:.0f} ms target")
    return 0 if median < args.target_ms else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Upstream ``TaxonomyParser`` against ``labrador validate``, on the same generated leaves, in one run.

Targets: ours cold (a fresh ``labrador validate --no-cache`` process) >= 20x faster per file than upstream;
ours warm (verdict cache primed by an earlier run) >= 200x.

What is timed, per tree (a clean tree, then the same tree with ~5% of leaves spoiled, see gen_taxonomy.py):

* upstream: ``TaxonomyParser(schema_version=0, message_format="logging").parse(path)`` on each qna.yaml,
  one after another, as upstream's CI does: that includes the ``yamllint`` subprocess it starts for every
  file (``.venv/bin`` is put first on PATH so it finds it) and, for schema errors, ``yq`` (only when the
  ``yq`` on PATH is mikefarah's, which upstream expects; see --upstream-yq). Upstream is slow, so by default
  a seeded random sample of files is timed (--upstream-sample, 0 = every file); on the spoiled tree every
  spoiled file is parsed too, so that the verdicts can be compared.
* ours cold: ``labrador validate --no-documents --no-cache --taxonomy DIR --format json`` in a fresh process
  (wall time, interpreter start included), and ``check_tree(..., cache=None)`` in this process.
* ours warm: the same CLI without ``--no-cache`` after a priming run (``XDG_CACHE_HOME`` points into the
  work folder), and ``check_tree`` with a ``CheckCache`` loaded from a file a previous run saved.

Correctness: on the clean tree both must report no errors; on the spoiled tree both must flag exactly the
spoiled leaves (compared on the files upstream parsed). Disagreements are listed.

    .venv/bin/python benchmarks/bench_check.py [--leaves 2000] [--workdir DIR] [--upstream-sample 300]
                                               [--repeat 3] [--errors 0.05] [--json]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version as dist_version
from pathlib import Path

import gen_taxonomy  # benchmarks/ is sys.path[0] when this file is run as a script

from labrador.validators.cache import CheckCache
from labrador.validators.config import find_config, load_config
from labrador.validators.tree import check_tree

REPO = Path(__file__).resolve().parent.parent
TARGET_COLD, TARGET_WARM = 20.0, 200.0


# ---------------------------------------------------------------- environment

def setup_path() -> list[str]:
    """Put the virtual environment's bin first on PATH (upstream runs ``yamllint`` as a command)."""
    bins = [str(REPO / ".venv" / "bin"), str(Path(sys.executable).parent)]
    bins = [b for i, b in enumerate(bins) if Path(b).is_dir() and b not in bins[:i]]
    os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])
    return bins


def yq_kind() -> str:
    """'mikefarah' (the Go yq upstream calls for line numbers), 'other' (e.g. the jq wrapper) or 'none'."""
    exe = shutil.which("yq")
    if exe is None:
        return "none"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "other"
    return "mikefarah" if "mikefarah" in (out.stdout + out.stderr) else "other"


def labrador_cmd() -> list[str]:
    exe = shutil.which("labrador")
    return [exe] if exe else [sys.executable, "-m", "validators.cli"]


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "instructlab_schema": dist_version("instructlab-schema"),
        "yamllint": dist_version("yamllint"),
    }


# ---------------------------------------------------------------- trees

def make_tree(workdir: Path, name: str, leaves: int, seed: int, errors: float) -> tuple[Path, list[dict]]:
    """Generate (or reuse, when the parameters match) ``workdir/name`` and its manifest."""
    root = workdir / name
    manifest = workdir / f"{name}.json"
    params = {"leaves": leaves, "seed": seed, "errors": errors, "generator": _gen_fingerprint()}
    if manifest.is_file() and root.is_dir():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if saved.get("params") == params:
            return root, saved["leaves"]
    if root.exists():
        if not manifest.is_file() and any(root.iterdir()):
            raise SystemExit(f"bench_check: {root} exists and was not made by this script; pick another --workdir")
        shutil.rmtree(root)
    made = gen_taxonomy.generate(root, leaves, seed, errors)
    rows = [vars(leaf) for leaf in made]
    manifest.write_text(json.dumps({"params": params, "leaves": rows}), encoding="utf-8")
    return root, rows


def _gen_fingerprint() -> str:
    """Trees in --workdir are regenerated when the generator changes."""
    return hashlib.sha256(Path(gen_taxonomy.__file__).read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------- upstream

def run_upstream(root: Path, files: list[Path], use_yq: bool) -> dict:
    from instructlab.schema.taxonomy import TaxonomyParser

    log = logging.getLogger("instructlab.schema.taxonomy")
    log.handlers[:] = [logging.NullHandler()]  # messages are counted on the Taxonomy object, not printed
    log.propagate = False
    parser = TaxonomyParser(schema_version=0, message_format="logging")
    parser.yq_available = use_yq
    flagged: set[str] = set()
    warnings = errors = crashed = 0
    t0 = time.perf_counter()
    for f in files:
        try:
            tax = parser.parse(f)
        except Exception:  # TaxonomyReadingException: a YAML syntax error, for instance
            crashed += 1
            flagged.add(f.parent.relative_to(root).as_posix())
            continue
        errors += tax.errors
        warnings += tax.warnings
        if tax.errors:
            flagged.add(f.parent.relative_to(root).as_posix())
    elapsed = time.perf_counter() - t0
    return {"files": len(files), "seconds": elapsed, "ms_per_file": elapsed * 1000 / len(files),
            "errors": errors, "warnings": warnings, "exceptions": crashed, "flagged": sorted(flagged)}


# ---------------------------------------------------------------- ours

class CountingCache(CheckCache):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.hits = self.misses = 0

    def get(self, key: str):
        found = super().get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found


def flagged_folders(reports) -> set[str]:
    return {r.path.rsplit("/", 1)[0] for r in reports if r.errors}


def run_inprocess(root: Path, repeat: int, cache_file: Path) -> dict:
    config = load_config(find_config(root))
    cold = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        reports = check_tree(root, config, cache=None)
        cold.append(time.perf_counter() - t0)
    n = sum(1 for r in reports if r.path != ".")
    cache_file.unlink(missing_ok=True)
    prime = CountingCache(cache_file)
    check_tree(root, config, cache=prime)
    prime.save()
    warm, misses = [], 0
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        cache = CountingCache(cache_file)  # loading the cache file is part of a warm run
        warm_reports = check_tree(root, config, cache=cache)
        warm.append(time.perf_counter() - t0)
        misses += cache.misses
    same = [(r.path, sorted(r.findings, key=repr)) for r in reports] == \
        [(r.path, sorted(r.findings, key=repr)) for r in warm_reports]
    return {
        "leaves": n,
        "cold_s": cold, "cold_ms_per_file": statistics.median(cold) * 1000 / n,
        "cold_first_ms_per_file": cold[0] * 1000 / n,
        "warm_s": warm, "warm_ms_per_file": statistics.median(warm) * 1000 / n,
        "warm_cache_misses": misses, "warm_same_findings": same,
        "flagged": sorted(flagged_folders(reports)),
        "errors": sum(len(r.errors) for r in reports), "warnings": sum(len(r.warnings) for r in reports),
        "tree_level_errors": sum(len(r.errors) for r in reports if r.path == "."),
    }


def cli_once(root: Path, cache: bool, xdg: Path) -> tuple[float, dict]:
    cmd = [*labrador_cmd(), "validate", "--no-documents", *([] if cache else ["--no-cache"]),
           "--taxonomy", str(root), "--format", "json"]
    env = {**os.environ, "XDG_CACHE_HOME": str(xdg), "CI": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"labrador validate failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return elapsed, json.loads(proc.stdout)


def cli_flagged(body: dict) -> set[str]:
    """Leaf folders with an error finding (paths in the JSON may carry a repository prefix)."""
    folders = {p.rsplit("/", 1)[0] for p in body["leaves"]}
    out = set()
    for f in body["findings"]:
        if f["severity"] != "error":
            continue
        d = f["path"].rsplit("/", 1)[0]
        while d and d not in folders:
            d = d.split("/", 1)[1] if "/" in d else ""
        out.add(d or ".")
    return out


def run_cli(root: Path, repeat: int, xdg: Path, empty: Path) -> dict:
    startup = [cli_once(empty, False, xdg)[0] for _ in range(repeat)]
    cold, cold_body = [], None
    for _ in range(repeat):
        t, cold_body = cli_once(root, False, xdg)
        cold.append(t)
    if xdg.exists():
        shutil.rmtree(xdg)
    prime_s, _ = cli_once(root, True, xdg)
    warm, warm_body = [], None
    for _ in range(repeat):
        t, warm_body = cli_once(root, True, xdg)
        warm.append(t)
    n = len(cold_body["leaves"])
    return {
        "leaves": n,
        "startup_s": statistics.median(startup),
        "cold_s": cold, "cold_ms_per_file": statistics.median(cold) * 1000 / n,
        "prime_s": prime_s,
        "warm_s": warm, "warm_ms_per_file": statistics.median(warm) * 1000 / n,
        "warm_same_output": warm_body == cold_body,
        "errors": cold_body["errors"], "warnings": cold_body["warnings"],
        "flagged": sorted(cli_flagged(cold_body)),
    }


# ---------------------------------------------------------------- one tree

def bench_tree(name: str, root: Path, rows: list[dict], args: argparse.Namespace, workdir: Path,
               use_yq: bool) -> dict:
    files = sorted(root.rglob("qna.yaml"))
    spoiled = {r["path"] for r in rows if r["error"]}
    if args.upstream_sample and args.upstream_sample < len(files):
        chosen = set(random.Random(args.seed).sample(files, args.upstream_sample))
        chosen |= {root / p / "qna.yaml" for p in spoiled}
        up_files = sorted(chosen)
    else:
        up_files = files
    up = run_upstream(root, up_files, use_yq)
    cli = run_cli(root, args.repeat, workdir / f"xdg-{name}", workdir / "empty")
    inproc = run_inprocess(root, args.repeat, workdir / f"cache-{name}.json")

    parsed = {f.parent.relative_to(root).as_posix() for f in up_files}
    up_flag, ours = set(up["flagged"]), set(cli["flagged"])
    problems = []
    if ours != set(inproc["flagged"]):
        problems.append(f"CLI and check_tree disagree: {sorted(ours ^ set(inproc['flagged']))[:10]}")
    if not cli["warm_same_output"]:
        problems.append("warm CLI output differs from cold")
    if not inproc["warm_same_findings"] or inproc["warm_cache_misses"]:
        problems.append(f"warm check_tree: {inproc['warm_cache_misses']} cache misses / findings differ")
    only_up = sorted(up_flag - ours)
    only_ours = sorted((ours & parsed) - up_flag)
    missed_up = sorted((spoiled & parsed) - up_flag)
    missed_ours = sorted(spoiled - ours)
    extra_ours = sorted(ours - spoiled)
    for label, items in (("flagged by upstream only", only_up), ("flagged by ours only", only_ours),
                         ("spoiled but not flagged by upstream", missed_up),
                         ("spoiled but not flagged by ours", missed_ours),
                         ("not spoiled but flagged by ours", extra_ours)):
        if items:
            problems.append(f"{label}: {len(items)}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
    for part in (up, cli, inproc):
        del part["flagged"]
    up_ms = up["ms_per_file"]
    return {
        "files": len(files),
        "spoiled": len(spoiled),
        "upstream": {**up, "sampled": len(up_files) < len(files), "flagged_files": len(up_flag)},
        "cli": {**cli, "flagged_files": len(ours)},
        "inprocess": inproc,
        "ratios": {
            "upstream/cli_cold": up_ms / cli["cold_ms_per_file"],
            "upstream/cli_warm": up_ms / cli["warm_ms_per_file"],
            "upstream/inprocess_cold": up_ms / inproc["cold_ms_per_file"],
            "upstream/inprocess_warm": up_ms / inproc["warm_ms_per_file"],
        },
        "agree": not problems,
        "problems": problems,
    }


# ---------------------------------------------------------------- report

def render(result: dict) -> str:
    m, cfg = result["machine"], result["config"]
    out = [
        f"machine: {m['cpus']} CPUs, {m['processor']}, {m['platform']}, {m['python']}",
        f"upstream: instructlab-schema {m['instructlab_schema']} TaxonomyParser(schema_version=0, "
        f"message_format='logging'), yamllint {m['yamllint']} as a subprocess per file; yq: {result['yq']}",
        f"ours: {' '.join(result['labrador'])} validate --no-documents [--no-cache] --format json; "
        f"check_tree in process; median of {cfg['repeat']} runs",
    ]
    for name, tree in result["trees"].items():
        up = tree["upstream"]
        out.append(f"tree '{name}': {tree['description']}")
        if up["sampled"]:
            extra = f" (incl. all {tree['spoiled']} spoiled)" if tree["spoiled"] else ""
            out.append(f"  upstream timed on a seeded random sample of {up['files']}/{tree['files']} files{extra}")
    out.append("")
    head = (f"{'tree':<7}{'files':>6}  {'upstream':>9}  {'cold CLI':>9}  {'cold lib':>9}  {'warm CLI':>9}  "
            f"{'warm lib':>9}  {'up/cold':>8}  {'up/warm':>8}  {'(lib: cold, warm)':>18}")
    out += ["per-file ms (CLI = fresh `labrador validate` process incl. interpreter start; lib = check_tree)",
            head]
    for name, tree in result["trees"].items():
        up, cli, lib, r = tree["upstream"], tree["cli"], tree["inprocess"], tree["ratios"]
        out.append(f"{name:<7}{tree['files']:>6}  {up['ms_per_file']:>9.2f}  {cli['cold_ms_per_file']:>9.3f}  "
                   f"{lib['cold_ms_per_file']:>9.3f}  {cli['warm_ms_per_file']:>9.3f}  "
                   f"{lib['warm_ms_per_file']:>9.3f}  "
                   f"{r['upstream/cli_cold']:>7.0f}x  {r['upstream/cli_warm']:>7.0f}x  "
                   f"{r['upstream/inprocess_cold']:>8.0f}x {r['upstream/inprocess_warm']:>7.0f}x")
    out.append("")
    for name, tree in result["trees"].items():
        cli, up = tree["cli"], tree["upstream"]
        out.append(f"{name}: CLI start-up (empty tree) {cli['startup_s'] * 1000:.0f} ms, cold run "
                   f"{statistics.median(cli['cold_s']):.2f} s, cache priming run {cli['prime_s']:.2f} s, warm run "
                   f"{statistics.median(cli['warm_s']):.2f} s; upstream {up['seconds']:.1f} s for {up['files']} files")
        out.append(f"{name}: errors: upstream {up['errors']} in {up['flagged_files']} files "
                   f"({up['warnings']} warnings, {up['exceptions']} exceptions), ours {cli['errors']} in "
                   f"{cli['flagged_files']} files ({cli['warnings']} warnings); spoiled {tree['spoiled']}: "
                   + ("agree" if tree["agree"] else "DISAGREE"))
        out += [f"  ! {p}" for p in tree["problems"]]
    t = result["targets"]
    out.append(f"targets (on the clean tree, fresh CLI process): cold >= {TARGET_COLD:.0f}x: "
               f"{'met' if t['cold_met'] else 'MISSED'} ({t['cold']:.0f}x); warm >= {TARGET_WARM:.0f}x: "
               f"{'met' if t['warm_met'] else 'MISSED'} ({t['warm']:.0f}x)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--leaves", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--errors", type=float, default=0.05, metavar="SHARE",
                    help="share of leaves spoiled in the second tree (0 skips that tree)")
    ap.add_argument("--workdir", type=Path, help="keep the trees here and reuse them (default: a temp folder)")
    ap.add_argument("--upstream-sample", type=int, default=300, metavar="N",
                    help="time upstream on N seeded random files per tree (0 = all; default 300)")
    ap.add_argument("--upstream-yq", choices=("auto", "on", "off"), default="auto",
                    help="let upstream call yq for error lines (auto: only if it is mikefarah's yq)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each of our timings (median is reported)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    args = ap.parse_args(argv)

    bins = setup_path()
    if shutil.which("yamllint") is None:
        print("bench_check: yamllint is not on PATH; upstream would skip linting and look faster", file=sys.stderr)
        return 2
    kind = yq_kind()
    use_yq = args.upstream_yq == "on" or (args.upstream_yq == "auto" and kind == "mikefarah")
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_check-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "empty").mkdir(exist_ok=True)
    try:
        result = {
            "machine": machine(),
            "config": {"leaves": args.leaves, "seed": args.seed, "errors": args.errors, "repeat": args.repeat,
                       "upstream_sample": args.upstream_sample, "path": bins},
            "yq": f"{'used' if use_yq else 'not used'} ({kind} yq on PATH)",
            "labrador": labrador_cmd(),
            "trees": {},
        }
        trees = [("clean", 0.0)] + ([("errors", args.errors)] if args.errors > 0 else [])
        for name, share in trees:
            root, rows = make_tree(workdir, name, args.leaves, args.seed, share)
            if not args.json:
                print(f"[{name}] {gen_taxonomy.describe([gen_taxonomy.Leaf(**r) for r in rows])}", file=sys.stderr)
            tree = bench_tree(name, root, rows, args, workdir, use_yq)
            tree["description"] = gen_taxonomy.describe([gen_taxonomy.Leaf(**r) for r in rows])
            result["trees"][name] = tree
        clean = result["trees"]["clean"]["ratios"]
        result["targets"] = {
            "cold": clean["upstream/cli_cold"], "cold_met": clean["upstream/cli_cold"] >= TARGET_COLD,
            "warm": clean["upstream/cli_warm"], "warm_met": clean["upstream/cli_warm"] >= TARGET_WARM,
        }
        result["agree"] = all(t["agree"] for t in result["trees"].values())
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""One night: changes since the last promoted model -> checked tree -> regenerated data -> mix with replay ->
a new phase of training -> evaluation and gate -> registry entry and report.

Every step leaves a marker (``runs/<id>/steps/<step>.json``, written atomically) once its outputs are
complete, so a killed night resumes at the first unfinished step under the same run id: generation
resumes from its request checkpoints and leaf cache, training from its newest checkpoint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from validators import Config
from validators.changes import ChangeError
from validators.commits import changed_leaves
from validators.tree import check_tree, repo_root, walk

from ..atomic import atomic_write_json, atomic_write_jsonl
from ..lock import PidLock
from ..settings import GenerateSettings
from .evaluate import evaluate_night
from .registry import Registry
from .report import write_report
from .settings import NightlySettings

Say = Callable[[str], None]


class NightError(RuntimeError):
    """A night that cannot go on; the message is the run's recorded reason."""


@dataclass
class Night:
    taxonomy: Path
    state: Path
    settings: NightlySettings
    generate: GenerateSettings
    checker: Config
    say: Say = lambda text: None

    @property
    def registry(self) -> Registry:
        return Registry(self.state / "registry.db")


# ---- small helpers ---------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A night's JSONL data (a night that wrote none has none)."""
    from ..jsonl import read_jsonl as read

    return read(path, NightError) if path.is_file() else []


def repo_and_prefix(taxonomy: Path) -> tuple[pygit2.Repository, str]:
    found = pygit2.discover_repository(str(taxonomy.resolve()))
    if found is None:
        raise NightError(f"{taxonomy} is not in a git repository: the nightly job follows the main branch's commits")
    repo = pygit2.Repository(found)
    if repo.head_is_unborn:
        raise NightError(f"{repo.workdir} has no commit yet")
    rel = taxonomy.resolve().relative_to(Path(repo.workdir).resolve()).as_posix()
    return repo, "" if rel == "." else rel


def head_commit(repo: pygit2.Repository) -> str:
    return str(repo.head.peel(pygit2.Commit).id)


# ---- the night -------------------------------------------------------------------------------------


class Steps:
    """Markers of finished steps for one run."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / "steps"
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, name: str) -> dict[str, Any] | None:
        p = self.dir / f"{name}.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    def mark(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        atomic_write_json(self.dir / f"{name}.json", data)
        return data


def run_night(night: Night) -> dict[str, Any]:
    """Run (or resume) tonight; returns the registry record."""
    night.state.mkdir(parents=True, exist_ok=True)
    with PidLock(night.state / "nightly.lock", "another nightly run"):
        registry = night.registry
        repo, prefix = repo_and_prefix(night.taxonomy)
        head = head_commit(repo)
        record = registry.unfinished()
        if record is not None and record["taxonomy_commit"] != head:
            record.update(status="failed", reason=f"main moved from {record['taxonomy_commit'][:12]} to {head[:12]} "
                          "while this night was interrupted; the next night starts from the new commit")
            registry.update(record)
            record = None
        parent = registry.last_promoted()
        if record is None:
            if parent is not None:
                try:
                    changes = changed_leaves(repo, parent["taxonomy_commit"], head, prefix)
                except ChangeError as exc:
                    raise NightError(f"cannot compare with the last promoted model's commit: {exc}") from None
                changed, removed = changes.changed, sorted({*changes.deleted, *(old for old, _ in changes.renamed)})
                if not changed and not removed:
                    record = registry.start(_base_record(head, parent, [], []))
                    record.update(status="no-changes", reason="no taxonomy leaf changed since the last promoted "
                                  f"model (taxonomy commit {parent['taxonomy_commit'][:12]})")
                    registry.update(record)
                    night.say(record["reason"])
                    return record
            else:
                changed, removed = [leaf.rel for leaf in walk(night.taxonomy)[0]], []
            record = registry.start(_base_record(head, parent, changed, removed))
            night.say(f"{record['id']}: {len(changed)} leaf(s) to regenerate, {len(removed)} removed")
        else:
            night.say(f"resuming {record['id']}")
        try:
            record = _steps(night, registry, record, parent)
        except NightError as exc:
            record.update(status="failed", reason=str(exc))
            registry.update(record)
        return record


def _base_record(head: str, parent: dict | None, changed: list[str], removed: list[str]) -> dict[str, Any]:
    return {"taxonomy_commit": head, "parent": parent["id"] if parent else None, "leaves_regenerated": changed,
            "leaves_removed": removed, "samples": {}, "metrics": {}, "model": None, "report": None, "reason": "",
            "teacher": None, "leaf_hashes": {}, "datasets": {}}


def _steps(night: Night, registry: Registry, record: dict[str, Any], parent: dict | None) -> dict[str, Any]:
    run_dir = night.state / "runs" / record["id"]
    steps = Steps(run_dir)
    s = night.settings

    checked = steps.done("validate") or steps.mark("validate", _validate(night))
    record["leaf_hashes"] = checked["leaf_hashes"]

    generated = steps.done("generate") or steps.mark("generate", _generate(night, record, run_dir))
    record["teacher"] = generated["teacher"]
    record["generation"] = generated["leaves"]

    mixed = steps.done("mix") or steps.mark("mix", _mix(night, record, run_dir, registry))
    record["samples"] = {"night": {"new": mixed["new"], "replayed": mixed["replayed"]}}
    record["datasets"] = {"new": str(run_dir / "new.jsonl"), "mix": str(run_dir / "mix.jsonl"),
                          "mix_manifest": mixed["manifest"]}
    registry.update(record)

    start = _start_model(night, parent)
    trained = steps.done("train") or steps.mark("train", _train(night, run_dir, start))
    record["model"] = trained["model"]
    registry.update(record)

    evaluation = evaluate_night(night, record, run_dir, start, registry.promoted())
    gate_ok, reason = _gate(s, evaluation)
    record["metrics"] = evaluation
    record["status"] = "promoted" if gate_ok else "rejected"
    record["reason"] = reason
    record["start_model"] = start
    record["report"] = str(run_dir / "report.md")
    write_report(run_dir, record, registry.runs())
    registry.update(record)
    night.say(f"{record['id']}: {record['status']} ({reason})")
    return record


def _validate(night: Night) -> dict[str, Any]:
    import hashlib

    reports = check_tree(night.taxonomy, night.checker)
    errors = [(r.path, f) for r in reports for f in r.errors]
    if errors:
        first = "; ".join(f"{f.path or path}:{f.line}:{f.column} [{f.check}] {f.message}" for path, f in errors[:3])
        raise NightError(f"the taxonomy on main does not pass the checker ({len(errors)} error(s)): {first}")
    hashes = {}
    for r in reports:
        if r.path.endswith("/qna.yaml"):
            data = (night.taxonomy / r.path).read_bytes()
            hashes[r.path.removesuffix("/qna.yaml")] = hashlib.sha256(data).hexdigest()
    return {"leaves": len(hashes), "leaf_hashes": hashes}


def _generate(night: Night, record: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Every current leaf through the generator: unchanged ones are answered by the leaf cache (no teacher
    call); only added or changed leaves cost requests. Tonight's new data: the changed leaves' samples."""
    from ..cli import prepare, run_leaves
    from ..sdg import Limits
    from ..settings import build_teacher

    folders = sorted(record["leaf_hashes"])
    inputs, skipped = prepare(night.taxonomy, night.checker, folders)
    if skipped:
        raise NightError(f"leaf {skipped[0].leaf} cannot be generated: {skipped[0].error}")
    try:
        teacher = build_teacher(night.generate)
    except (ValueError, ImportError) as exc:
        raise NightError(f"teacher {night.generate.teacher!r}: {exc}") from None
    name = teacher.name
    night.say(f"generating with {name} ({night.generate.profile} profile)")
    results = asyncio.run(run_leaves(inputs, teacher, night.state / "generated", seed=night.settings.seed,
                                     limits=Limits.profile(night.generate.profile), config=night.checker,
                                     taxonomy_repo=repo_root(night.taxonomy)))
    changed = set(record["leaves_regenerated"])
    new: list[dict[str, Any]] = []
    per_leaf = {}
    for res in results:
        folder = res.leaf.rsplit("/", 1)[0]
        per_leaf[folder] = {"status": res.status, "kept": res.kept, "dropped": res.dropped,
                            "regenerated": folder in changed}
        if res.status == "failed":
            raise NightError(f"generation failed for {folder}: {res.error}")
        if folder in changed:
            new += [{**s, "leaf": folder} for s in res.samples]
    seeds = 0
    if night.settings.include_seeds:  # a CPU-sized teacher may keep nothing: the contributors' own examples
        from .evaluate import seed_messages

        for item in inputs:
            folder = item.relpath.rsplit("/", 1)[0]
            if folder in changed and item.report is not None and isinstance(item.report.data, dict):
                rows = [{"messages": m, "leaf": folder, "origin": "seed"} for m in seed_messages(item.report.data)]
                new += rows
                seeds += len(rows)
    atomic_write_jsonl(run_dir / "new.jsonl", new)
    return {"teacher": name, "leaves": per_leaf, "new": len(new), "seed_samples": seeds}


def _mix(night: Night, record: dict[str, Any], run_dir: Path, registry: Registry) -> dict[str, Any]:
    """Tonight's phase: the new samples plus a replay buffer drawn from every earlier promoted night's data
    (leaves changed or removed tonight excluded), through the mixing recipes' own core."""
    from ..mixing.core import plan
    from ..mixing.recipe import parse_recipe

    s = night.settings
    gone = set(record["leaves_regenerated"]) | set(record["leaves_removed"])
    earlier = []
    for run in registry.promoted():
        earlier += [r for r in read_jsonl(Path(run["datasets"]["new"])) if r.get("leaf") not in gone]
    new = read_jsonl(run_dir / "new.jsonl")
    by_leaf: dict[str, list[dict[str, Any]]] = {}
    for r in new:
        by_leaf.setdefault(r["leaf"], []).append(r)
    replay = {"dataset": "earlier-nights", "fraction": s.replay_fraction}
    if s.replay_max_per_leaf:
        replay["max_per_leaf"] = s.replay_max_per_leaf
    recipe = parse_recipe({"version": 1, "phases": [{"name": "night", "groups": [{"name": "new", "include": ["**"]}],
                                                      "replay": [replay]}]}, "nightly")
    mixed = plan(recipe, by_leaf, {"earlier-nights": earlier}, seed=s.seed)
    rows = mixed.phases["night"]
    if not rows:
        raise NightError("no sample to train on tonight: the teacher kept nothing for the changed leaves and there "
                         "is no earlier night to replay")
    atomic_write_jsonl(run_dir / "mix.jsonl", rows)
    m = mixed.manifest["phases"]["night"]
    return {"new": m["own"], "replayed": m["replayed"], "manifest": mixed.manifest}


def _start_model(night: Night, parent: dict | None) -> str:
    s = night.settings
    if s.start_from == "promoted" and parent is not None and parent.get("model"):
        return parent["model"]
    return base_model(night)


def base_model(night: Night) -> str:
    """The configured base model; ``derive:NAME:LAYERS`` is derived once from a registry model."""
    spec = night.settings.base_model
    if not spec.startswith("derive:"):
        if not (Path(spec) / "config.json").is_file():
            raise NightError(f"base_model {spec} is not a Hugging Face model folder")
        return spec
    _, name, layers = spec.split(":", 2)
    out = night.state / "base" / f"{name}-{layers.replace(',', '_')}"
    if not (out / "config.json").is_file():
        from ..models.derive import derive_student, parse_layers
        from ..models.store import pull

        source = pull(name)
        total = json.loads((source / "config.json").read_text())["num_hidden_layers"]
        night.say(f"deriving the base model: layers {layers} of {name}")
        derive_student(source, parse_layers(layers, total), out)
    return str(out)


def _train(night: Night, run_dir: Path, start: str) -> dict[str, Any]:
    from ..train.config import parse_config
    from ..train.loop import train

    s = night.settings
    out = run_dir / "train"
    raw: dict[str, Any] = {
        "model": start, "output_dir": str(out), "seed": s.seed, "max_seq_len": s.max_seq_len,
        "max_tokens_per_batch": s.max_tokens_per_batch, "heldout_fraction": s.heldout_fraction,
        "save_every_steps": 2, "keep_checkpoints": s.keep_checkpoints, "min_sample_tokens": 8,
        "phases": [{"name": "night", "data": str(run_dir / "mix.jsonl"), "epochs": s.epochs,
                    "effective_batch": s.effective_batch, "lr": s.lr, "warmup_steps": s.warmup_steps,
                    "max_steps": s.max_steps}],
    }
    factory = None
    if s.distill_teacher:
        raw["distill"] = {"teacher": s.distill_teacher, "lambda": s.distill_lambda}
    config = parse_config(raw, source=f"[nightly] of {night.state}")
    if config.distill is not None:
        from ..distill.config import check_distill, parse_distill
        from ..distill.step import make_loss_factory

        dc = parse_distill(config)
        check_distill(config, dc)
        factory = make_loss_factory(dc)
    night.say(f"training on {run_dir / 'mix.jsonl'} from {start}")
    summary = train(config, resume=(out / "run.json").is_file(), loss_factory=factory, progress=False)
    return {"model": str(out / "night" / "final"), "summary": summary}


def _gate(s: NightlySettings, m: dict[str, Any]) -> tuple[bool, str]:
    worst = max((v for v in m["forgetting"].values() if v is not None), default=0.0)
    if worst > s.gate_max_forgetting:
        night = max(m["forgetting"], key=m["forgetting"].get)
        return False, (f"forgetting of {night} is {worst:+.3f} nats/token, above the gate's "
                       f"{s.gate_max_forgetting}")
    new, before = m["heldout_loss"]["tonight"], m["heldout_loss"]["tonight_parent"]
    if new is None or before is None:
        return True, f"no held-out sample of tonight's data to compare; worst forgetting {worst:+.3f}"
    if s.gate_require_improvement and not (new < before):
        return False, f"tonight's held-out loss {new:.3f} did not improve on the parent model's {before:.3f}"
    return True, f"held-out loss {before:.3f} -> {new:.3f}; worst forgetting {worst:+.3f}"

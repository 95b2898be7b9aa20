"""One night: changes since the last promoted model -> checked tree -> regenerated data -> mix with replay ->
a new phase of training -> evaluation and gate -> registry entry and report.

Every step leaves a marker (``runs/<id>/steps/<step>.json``, written atomically) once its outputs are
complete, so a killed night resumes at the first unfinished step under the same run id: generation
resumes from its request checkpoints and leaf cache, training from its newest checkpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pygit2

from labrador.validators.atomic import atomic_write_jsonl
from labrador.validators.changes import ChangeError
from labrador.validators.commits import changed_leaves as commit_changes
from labrador.validators.holdout import is_heldout_row, without
from labrador.validators.locks import PidLock
from labrador.validators.seeds import seed_conversations
from labrador.validators.tree import check_tree, repo_root, walk

from ..evaluation.seen import write_seen
from ..models.card import write_card
from ..train.export import whole_folder
from .branch import branch_eval, changed_leaves
from .card import night_card
from .choose import choose_checkpoint
from .context import Night
from .data import NightError, current_rows, read_jsonl
from .evaluate import evaluate_night
from .gate import gate
from .heldout import choose_heldout, heldout_eval, heldout_texts
from .models import base_model, embedded_distill_teacher
from .registry import Registry
from .report import write_report
from .steps import Steps, claim_run_dir, settings_hash

# ---- small helpers ---------------------------------------------------------------------------------


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


def on_main(repo: pygit2.Repository, commit: str, head: str) -> bool:
    """``commit`` still exists and is ``head`` or one of its ancestors (main was not rewritten past it)."""
    if _missing(repo, commit):
        return False
    try:
        return commit == head or repo.descendant_of(head, commit)
    except (ValueError, KeyError, pygit2.GitError):
        return False


def run_night(night: Night) -> dict[str, Any]:
    """Run (or resume) tonight; returns the registry record. Whatever stops a night (but a kill) ends its row
    as ``failed`` with the reason."""
    night.state.mkdir(parents=True, exist_ok=True)
    with PidLock(night.state / "nightly.lock", "another nightly run"):
        registry = night.registry
        repo, prefix = repo_and_prefix(night.taxonomy)
        head = head_commit(repo)
        settings = settings_hash(night)
        record = registry.unfinished()
        if record is not None:
            why = ""
            if record["taxonomy_commit"] != head:
                why = f"main moved from {record['taxonomy_commit'][:12]} to {head[:12]}"
            elif record.get("settings") != settings:
                why = "the settings changed"
            if why:
                record.update(status="failed", reason=f"{why} while this night was interrupted; the next night "
                              "starts afresh")
                registry.update(record)
                record = None
        if record is None:
            record = _new_record(night, registry, repo, prefix, head, settings)
            if record["status"] != "running":
                return record
        else:
            night.say(f"resuming {record['id']}")
        try:
            parent = registry.get(record["parent"]) if record.get("parent") else None
            record = _steps(night, registry, record, parent)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, then reported by the caller
            reason = str(exc) if isinstance(exc, NightError) else f"{type(exc).__name__}: {exc}"
            record.update(status="failed", reason=reason)
            registry.update(record)
            if not isinstance(exc, NightError):
                raise NightError(f"{record['id']} failed: {reason}") from exc
        run_hooks(night, record)
        return record


def run_hooks(night: Night, record: dict[str, Any]) -> None:
    """Packages above the trainer act on a finished night through ``labrador.night_hooks`` entry points (the
    bot comments on the merged pull requests); a hook never changes or fails the night."""
    if record.get("status") not in ("promoted", "rejected"):
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group="labrador.night_hooks"):
        try:
            hook = ep.load()
        except ImportError:
            continue  # its package's extra is not installed (the bot's, on a training-only machine): off
        try:
            hook(record, night.config, night.settings, night.say)
        except Exception as exc:  # noqa: BLE001 - a broken hook is reported, the night stands
            night.say(f"night hook {ep.name} failed: {type(exc).__name__}: {exc}")


def _new_record(night: Night, registry: Registry, repo: pygit2.Repository, prefix: str, head: str,
                settings: str) -> dict[str, Any]:
    """Tonight's row: its parent is the newest promoted night whose commit is still on main (a force-push that
    dropped or pruned the last one's commit says so and rebuilds from the one before, or from the base)."""
    import uuid

    parent = last = registry.last_promoted()
    history = ""
    if last is not None and not on_main(repo, last["taxonomy_commit"], head):
        gone = "is gone" if _missing(repo, last["taxonomy_commit"]) else "is no longer on main"
        parent = next((r for r in reversed(registry.promoted()) if on_main(repo, r["taxonomy_commit"], head)), None)
        then = (f"rebuilding from {parent['id']} (commit {parent['taxonomy_commit'][:12]}), the newest promoted "
                "night still on main" if parent else
                "no promoted night is on main any more: starting again from the base model")
        history = f"main was rewritten: {last['id']}'s commit {last['taxonomy_commit'][:12]} {gone}; {then}"
        night.say(history)
    if parent is not None:
        try:
            changes = commit_changes(repo, parent["taxonomy_commit"], head, prefix)
        except (ChangeError, pygit2.GitError, KeyError, ValueError) as exc:
            raise NightError(f"cannot compare with the last promoted model's commit: {exc}") from None
        changed, removed = changes.changed, sorted({*changes.deleted, *(old for old, _ in changes.renamed)})
    else:
        changed, removed = [leaf.rel for leaf in walk(night.taxonomy)[0]], []
    base = {"taxonomy_commit": head, "parent": parent["id"] if parent else None, "leaves_regenerated": changed,
            "leaves_removed": removed, "samples": {}, "metrics": {}, "model": None, "report": None, "reason": "",
            "teacher": None, "leaf_hashes": {}, "datasets": {}, "history": history, "uid": uuid.uuid4().hex,
            "settings": settings}
    record = registry.start(base)
    if parent is not None and not changed and not removed:
        if history:  # the model of record learned what main no longer has: its parent's model is the right one
            record.update(status="promoted", model=parent["model"], leaf_hashes=parent.get("leaf_hashes", {}),
                          reason=f"{history}; no leaf differs from it, so its model is promoted again for "
                          f"{head[:12]}")
        else:
            record.update(status="no-changes", reason="no taxonomy leaf changed since the last promoted model "
                          f"(taxonomy commit {parent['taxonomy_commit'][:12]})")
        registry.update(record)
        night.say(record["reason"])
        return record
    night.say(f"{record['id']}: {len(changed)} leaf(s) to regenerate, {len(removed)} removed")
    return record


def _missing(repo: pygit2.Repository, commit: str) -> bool:
    try:
        return repo.get(commit) is None
    except (ValueError, pygit2.GitError):
        return True


def _steps(night: Night, registry: Registry, record: dict[str, Any], parent: dict | None) -> dict[str, Any]:
    run_dir = claim_run_dir(night, record)
    steps = Steps(run_dir, record["uid"])
    s = night.settings

    checked = steps.done("validate") or steps.mark("validate", _validate(night))
    record["leaf_hashes"] = checked["leaf_hashes"]
    held = steps.done("holdout") or steps.mark("holdout", {"leaves": choose_heldout(
        night, sorted(record["leaf_hashes"]), parent)})  # before any teacher sees a seed
    record["heldout_seeds"] = held["leaves"]

    generated = steps.done("generate") or steps.mark("generate", _generate(night, record, run_dir))
    record["teacher"] = generated["teacher"]
    record["generation"] = generated["leaves"]

    mixed = steps.done("mix") or steps.mark("mix", _mix(night, record, run_dir, registry))
    record["samples"] = {"night": {"new": mixed["new"], "replayed": mixed["replayed"]}}
    record["datasets"] = {"new": str(run_dir / "new.jsonl"), "mix": str(run_dir / "mix.jsonl"),
                          "mix_manifest": mixed["manifest"]}
    registry.update(record)

    start = _start_model(night, parent)
    trained = steps.done("train")
    if trained is None or not whole_folder(Path(trained["model"])):  # a candidate damaged since: trained again
        trained = steps.mark("train", _train(night, run_dir, start))  # (resumes from its checkpoint, re-exports)
    record["model"] = trained["model"]
    record["distill"] = trained.get("distill")
    if s.choose_checkpoint:
        chosen = steps.done("choose") or steps.mark("choose", choose_checkpoint(night, record, run_dir, trained))
        record["checkpoint_choice"] = chosen
        record["model"] = chosen["model"]
        night.say(f"checkpoint choice: {chosen['reason']}")
    registry.update(record)

    write_seen(record["model"], record["leaf_hashes"])  # what this model has learnt: the next night's "new"
    evaluation = evaluate_night(night, record, run_dir, start, registry.promoted())
    heldout = steps.done("heldout_eval") or steps.mark("heldout_eval", heldout_eval(
        night, record, run_dir, start, base_model(night)))
    record["heldout"] = heldout
    judged: dict[str, Any] = {"result": None, "changed": []}
    if s.branch_eval:
        judged = steps.done("branch_eval") or steps.mark("branch_eval", branch_eval(night, record, run_dir, start,
                                                                                  parent))
        record["branch_eval"] = judged["result"]
    gate_ok, reason = gate(s, evaluation, judged["result"] if s.gate_judged else None, changed_leaves(record),
                           heldout if heldout.get("leaves") else None)
    record["metrics"] = evaluation
    record["status"] = "promoted" if gate_ok else "rejected"
    record["reason"] = f"{record['history']}; {reason}" if record.get("history") else reason
    record["start_model"] = start
    record["report"] = str(run_dir / "report.md")
    if gate_ok:  # a promoted model says what it is: base, licence, lineage, settings, measures
        config = s.train_config(start, run_dir / "train", run_dir / "mix.jsonl")
        card = write_card(Path(record["model"]), night_card(record, registry.runs(), s.base_model, config))
        record["card"] = str(card)
    write_report(run_dir, record, registry.runs())
    registry.update(record)
    night.say(f"{record['id']}: {record['status']} ({record['reason']})")
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
    from ..sdg import Limits, generate, prepare_leaves
    from ..teachers.config import build_teacher

    folders = sorted(record["leaf_hashes"])
    held = record.get("heldout_seeds") or {}
    inputs, skipped = prepare_leaves(night.taxonomy, night.checker, folders)
    inputs = [replace(i, holdout=tuple(held.get(i.relpath.rsplit("/", 1)[0]) or ())) for i in inputs]
    if skipped:
        raise NightError(f"leaf {skipped[0].leaf} cannot be generated: {skipped[0].error}")
    try:
        teacher = build_teacher(night.teacher)
    except (ValueError, ImportError) as exc:
        raise NightError(f"teacher {night.teacher.label!r}: {exc}") from None
    name = teacher.name
    night.say(f"generating with {name} ({night.teacher.profile_name} profile)")
    limits = Limits.for_teacher(night.teacher)
    from rich.console import Console

    from ..sdg.progress import ProgressDisplay

    console = Console(stderr=True)
    with ProgressDisplay(console, len(inputs), live=ProgressDisplay.wanted(console)) as display:
        results = asyncio.run(generate(inputs, teacher, night.state / "generated", seed=night.settings.seed,
                                       limits=limits, config=night.checker, progress=display.event,
                                       on_leaf=display.leaf_done, taxonomy_repo=repo_root(night.taxonomy),
                                       close_teacher=True))
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
        for item in inputs:
            folder = item.relpath.rsplit("/", 1)[0]
            if folder in changed and item.report is not None and isinstance(item.report.data, dict):
                kept = without(item.report.data, folder, item.holdout)  # a held-out seed is never trained on
                rows = [{"messages": m, "leaf": folder, "origin": "seed"} for m in seed_conversations(kept)]
                new += rows
                seeds += len(rows)
    atomic_write_jsonl(run_dir / "new.jsonl", new)
    return {"teacher": name, "leaves": per_leaf, "new": len(new), "seed_samples": seeds}


def _mix(night: Night, record: dict[str, Any], run_dir: Path, registry: Registry) -> dict[str, Any]:
    """Tonight's phase: the new samples plus a replay buffer drawn from every earlier promoted night's data
    (leaves changed or removed tonight excluded), through the mixing recipes' own core."""
    from ..mixing.core import plan
    from .settings import REPLAY_DATASET, night_recipe

    s = night.settings
    gone = set(record["leaves_regenerated"]) | set(record["leaves_removed"])
    held = heldout_texts(night, record.get("heldout_seeds") or {})  # never in a mix, replayed or new
    earlier = []
    for run in registry.promoted():
        earlier += [r for r in current_rows(run, record["leaf_hashes"])
                    if r.get("leaf") not in gone and not is_heldout_row(r, held)]
    new = [r for r in read_jsonl(run_dir / "new.jsonl") if not is_heldout_row(r, held)]
    by_leaf: dict[str, list[dict[str, Any]]] = {}
    for r in new:
        by_leaf.setdefault(r["leaf"], []).append(r)
    recipe = night_recipe(s)
    mixed = plan(recipe, by_leaf, {REPLAY_DATASET: earlier}, seed=s.seed)
    rows = mixed.phases[recipe.phases[0].name]
    if not rows:
        if not record["leaf_hashes"]:
            raise NightError("no sample to train on tonight: the taxonomy has no leaf left (every leaf was deleted, "
                             f"{len(record['leaves_removed'])} tonight); add a leaf, or restore one")
        if not record["leaves_regenerated"]:
            raise NightError("no sample to train on tonight: no leaf was added or changed, and the leaves left hold "
                             "no earlier night's data to replay")
        raise NightError("no sample to train on tonight: the teacher kept nothing for the changed leaves and there "
                         "is no earlier night to replay")
    atomic_write_jsonl(run_dir / "mix.jsonl", rows)
    m = mixed.manifest["phases"][recipe.phases[0].name]
    return {"new": m["own"], "replayed": m["replayed"], "manifest": mixed.manifest}


def _start_model(night: Night, parent: dict | None) -> str:
    s = night.settings
    if s.start_from == "promoted" and parent is not None and parent.get("model"):
        return parent["model"]
    return base_model(night)


def _train(night: Night, run_dir: Path, start: str) -> dict[str, Any]:
    """Tonight's phase through the same entry point as `labrador train` (distillation wired there)."""
    from ..training import train

    out = run_dir / "train"
    config = night.settings.train_config(start, out, run_dir / "mix.jsonl", source=f"[nightly] of {night.state}")
    config = embedded_distill_teacher(config)
    night.say(f"training on {run_dir / 'mix.jsonl'} from {start}")
    summary = train(config, resume=(out / "run.json").is_file())  # a bar on a terminal, a line every 30 s in a log
    dc = config.distill
    distill = None if dc is None else {"teacher": dc.teacher_model or dc.teacher_cache or "dae", "lambda": dc.lam,
                                       "attention": dc.attention}
    return {"model": str(Path(config.output_dir) / config.phases[0].name / "final"), "summary": summary,
            "distill": distill}

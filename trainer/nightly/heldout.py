"""The night's held-out seeds: which pairs of each leaf nobody may see (chosen before generation, stable across
nights), and, after training, what the candidate, its parent and the lineage's original base model make of
them (``ref_nll``, ``rouge_l``) and of everyday prompts (drift). The evidence that a night learnt a merged
leaf, with no judge needed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from labrador.validators import check_file
from labrador.validators.atomic import atomic_write_json
from labrador.validators.holdout import HeldOut, choose, heldout_pairs

from .context import Night
from .data import NightError


def _leaf_data(night: Night, leaf: str) -> Any:
    qna = night.taxonomy / leaf / "qna.yaml"
    if not qna.is_file():
        return None
    report = check_file(f"{leaf}/qna.yaml", qna.read_bytes(), night.checker)
    return report.data if isinstance(report.data, dict) else None


def choose_heldout(night: Night, leaves: list[str], parent: dict[str, Any] | None) -> dict[str, list[str] | None]:
    """``{leaf: ids}`` for every current leaf (``None``: too few pairs, not measurable; ``[]``: turned off),
    keeping the parent night's choice where its pairs are still there."""
    n = night.evaluate.holdout_seeds
    before = (parent or {}).get("heldout_seeds") or {}
    out: dict[str, list[str] | None] = {}
    for leaf in leaves:
        data = _leaf_data(night, leaf)
        out[leaf] = choose(leaf, data, n, before.get(leaf) or ()) if data is not None else None
    return out


def heldout_items(night: Night, held: dict[str, list[str] | None], leaves: list[str] | None = None) -> list[HeldOut]:
    """The held-out pairs of ``leaves`` (default: every leaf with some), in leaf order."""
    items: list[HeldOut] = []
    for leaf in sorted(leaves if leaves is not None else held):
        ids = held.get(leaf)
        data = _leaf_data(night, leaf) if ids else None
        if data is not None:
            items += heldout_pairs(leaf, data, ids)
    return items


def heldout_texts(night: Night, held: dict[str, list[str] | None]) -> list[tuple[str, str]]:
    """(prompt, reference) of every held-out pair: what no training row may be."""
    return [(i.prompt, i.reference) for i in heldout_items(night, held)]


def heldout_eval(night: Night, record: dict[str, Any], run_dir: Path, start: str, base: str) -> dict[str, Any]:
    """Candidate, parent and base on every measurable leaf's held-out pairs, and their drift; written to
    ``runs/<id>/heldout.json``. The parent is measured once when it is the base."""
    from ..evaluation.metrics import LoadedModel, compare, drift_rows, measure

    held = record.get("heldout_seeds") or {}
    items = heldout_items(night, held)
    names = ("ref_nll", "rouge_l")
    not_measurable = sorted(leaf for leaf, ids in held.items() if ids is None)
    if not items:
        result = {"leaves": {}, "drift": {}, "not_measurable": not_measurable, "pairs": 0}
        atomic_write_json(run_dir / "heldout.json", result)
        return result
    try:
        drift = drift_rows(base, night.state / "drift" / f"{Path(base).name}.json", say=night.say)
    except (OSError, ValueError) as exc:
        raise NightError(f"drift: the base model {base} cannot answer: {exc}") from None
    night.say(f"held-out seeds: {len(items)} pair(s) of {len({i.leaf for i in items})} leaf(s); measuring the "
              "candidate, its parent and the base model")
    tokens = min(night.evaluate.max_new_tokens, 128)
    results: dict[str, Any] = {}
    for who, path in (("candidate", record["model"]), ("parent", start), ("base", base)):
        if who == "base" and Path(base).resolve() == Path(start).resolve():
            results["base"] = results["parent"]  # the first night (or start_from = base): measured once
            continue
        results[who] = _measured(Path(path), items, names, tokens, drift, night.state / "measures",
                                 lambda p: measure(LoadedModel(p), items, names, tokens, drift))
    compared = compare(results, names)
    answers = {leaf: {who: r["leaves"].get(leaf, {}).get("answers", []) for who, r in results.items()}
               for leaf in compared["leaves"]}
    result = {**compared, "not_measurable": not_measurable, "pairs": len(items),
              "leaf_pairs": {leaf: sum(1 for i in items if i.leaf == leaf) for leaf in compared["leaves"]},
              "examples": {leaf: {"prompt": next(i.prompt for i in items if i.leaf == leaf),
                                  "reference": next(i.reference for i in items if i.leaf == leaf),
                                  **{who: (a[0] if a else "") for who, a in answers[leaf].items()}}
                           for leaf in compared["leaves"]}}
    atomic_write_json(run_dir / "heldout.json", result)
    return result


def _measured(model: Path, items: list[HeldOut], names: tuple[str, ...], tokens: int, drift: list[Any],
              cache: Path, run: Any) -> dict[str, Any]:
    """``run(model)``, or its earlier result for the same weights, pairs, metrics and drift prompts: tonight's
    parent was last night's candidate and the base never changes, so a night measures one new model, not three.
    Keyed by the weights' content (:func:`weights_digest`), never by a path or a name."""
    from labrador.trainer.models.store import weights_digest

    key = hashlib.sha256(json.dumps([weights_digest(model), [(i.leaf, i.prompt, i.reference) for i in items],
                                     sorted(names), tokens, drift], sort_keys=True).encode()).hexdigest()
    path = cache / f"{key[:32]}.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(found, dict) and isinstance(found.get("leaves"), dict):
            return found
    except (OSError, ValueError):
        pass  # not measured yet, or a damaged file: measure again
    result = run(model)
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
    return result

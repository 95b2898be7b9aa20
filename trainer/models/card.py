"""The model card (``README.md`` with YAML metadata) in every model folder we publish, written through
``huggingface_hub``'s :class:`ModelCard`, so the hub, vLLM and every tool show what a folder is: its base
model and licence, how it was made (the nights from the base, the training settings that matter) and how it
measured (``model-index``).

A pure function of data turns :class:`CardFacts` into the card's text; only :func:`write_card` touches the disk
(atomically). Nothing that names this machine gets in: a local path becomes its last part, a URL loses its
user and password, and a card that still holds an absolute path is refused before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from labrador.validators.atomic import atomic_write

from .catalogue import CATALOGUE

CARD = "README.md"
TAGS = ("labrador", "lab", "synthetic-data")
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])(?:/(?:home|root|tmp|Users|var|opt|work|mnt|srv|data)/|~/|[A-Za-z]:\\)")


@dataclass(frozen=True)
class CardFacts:
    """What a card says. ``lineage``: oldest first, one mapping per night (``id``, ``taxonomy_commit``,
    ``added``, ``changed``, ``removed``, optional ``pull_requests``); ``training``: ``phases`` (name, lr,
    epochs), optional ``distill`` (teacher, lambda), ``replay`` (new, replayed), ``lora``; ``heldout``: per leaf
    ``{metric: {candidate, parent, base, delta}}`` and ``drift``; ``judged``: per leaf ``{mean_before,
    mean_after, verdict}``."""

    name: str
    base_model: str
    license: str = "other"
    summary: str = ""
    lineage: Sequence[Mapping[str, Any]] = ()
    training: Mapping[str, Any] = field(default_factory=dict)
    heldout: Mapping[str, Any] = field(default_factory=dict)
    judged: Mapping[str, Any] = field(default_factory=dict)


def public(value: str) -> str:
    """``value`` as a card may show it: a local path as its last part, a URL without its credentials."""
    text = str(value)
    if "://" in text:
        parts = urlsplit(text)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:\\", text):
        return Path(text.replace("\\", "/")).name
    return text


def base_facts(spec: str) -> tuple[str, str]:
    """``(base_model, license)`` of a model we started from: a catalogue name (its hub id and licence), a
    ``derive:NAME:LAYERS`` cut of one, or a folder (what its own card says, else its folder name)."""
    name = spec.split(":", 2)[1] if spec.startswith("derive:") else spec
    if Path(name).name in CATALOGUE and not (Path(name) / CARD).is_file():  # a pulled catalogue model's folder
        name = Path(name).name
    if name in CATALOGUE:
        e = CATALOGUE[name]
        return e.hub_id, e.licence.lower()
    folder = Path(spec)
    card = folder / CARD
    if card.is_file():
        try:
            data = read_card(folder).data
            base = data.base_model if isinstance(data.base_model, str) else None
            return public(base or folder.name), str(data.license or "other")
        except (OSError, ValueError):
            pass
    return public(spec), "other"


def read_card(folder: Path) -> Any:
    from huggingface_hub import ModelCard

    return ModelCard.load(Path(folder) / CARD)


def render_card(facts: CardFacts) -> str:
    """The card's text: YAML metadata (base_model, license, library_name, tags, model-index) and a body."""
    from huggingface_hub import ModelCard, ModelCardData

    base = CATALOGUE[facts.base_model].hub_id if facts.base_model in CATALOGUE else public(facts.base_model)
    data = ModelCardData(base_model=base, license=facts.license, library_name="transformers",
                         tags=list(TAGS) + (["lora"] if facts.training.get("lora") else []),
                         model_name=public(facts.name), eval_results=_eval_results(facts) or None)
    body = "\n".join(_body(facts)).rstrip() + "\n"
    text = str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))
    found = _ABSOLUTE.search(text)
    if found:  # a path slipped past public(): a bug, never a card that names this machine's folders
        raise ValueError(f"model card for {facts.name}: refusing to write a local path ({found.group(0)}...)")
    return text


def write_card(folder: Path, facts: CardFacts) -> Path:
    """``folder/README.md``, written whole or not at all."""
    path = Path(folder) / CARD
    atomic_write(path, render_card(facts).encode("utf-8"))
    return path


def _eval_results(facts: CardFacts) -> list[Any]:
    from huggingface_hub import EvalResult

    out = []
    for leaf, row in sorted((facts.heldout.get("leaves") or {}).items()):
        for metric, values in sorted(row.items()):
            value = (values or {}).get("candidate")
            if isinstance(value, int | float):
                out.append(EvalResult(task_type="text-generation", dataset_type="labrador-heldout-seeds",
                                      dataset_name=leaf, metric_type=metric, metric_value=round(float(value), 4),
                                      metric_name=f"held-out {metric}"))
    drift = (facts.heldout.get("drift") or {}).get("candidate")
    if isinstance(drift, int | float):
        out.append(EvalResult(task_type="text-generation", dataset_type="labrador-drift", dataset_name="everyday",
                              metric_type="drift_nll", metric_value=round(float(drift), 4), metric_name="drift NLL"))
    for leaf, row in sorted(facts.judged.items()):
        value = row.get("mean_after")
        if isinstance(value, int | float):
            out.append(EvalResult(task_type="text-generation", dataset_type="labrador-judged", dataset_name=leaf,
                                  metric_type="judge_score", metric_value=round(float(value), 3),
                                  metric_name="judge mean (1-10)"))
    return out


def _body(facts: CardFacts) -> list[str]:
    lines = [f"# {public(facts.name)}", ""]
    lines += [facts.summary or f"Grown by Labrador from `{public(facts.base_model)}`: "
              "community taxonomy leaves turned into synthetic training data (LAB), trained in phases with "
              "replay so that it keeps what it knew.", ""]
    if facts.lineage:
        lines += ["## Lineage", "", "| night | taxonomy commit | added | changed | removed | pull requests |",
                  "|---|---|---|---|---|---|"]
        for night in facts.lineage:
            prs = ", ".join(f"#{n}" for n in night.get("pull_requests") or []) or "—"
            lines.append(f"| {night['id']} | `{str(night.get('taxonomy_commit', ''))[:12]}` | "
                         f"{_leaves(night.get('added'))} | {_leaves(night.get('changed'))} | "
                         f"{_leaves(night.get('removed'))} | {prs} |")
        lines.append("")
    t = facts.training
    if t:
        lines += ["## Training", ""]
        for phase in t.get("phases") or []:
            lines.append(f"- phase `{phase['name']}`: lr {phase['lr']:g}, {phase['epochs']} epoch(s), "
                         f"{phase.get('effective_batch', '?')} samples a step")
        if t.get("distill"):
            d = t["distill"]
            lines.append(f"- knowledge distillation from `{public(str(d.get('teacher')))}`, λ = {d.get('lambda')}"
                         + (f", attention weight {d['attention']}" if d.get("attention") else ""))
        if t.get("replay"):
            r = t["replay"]
            lines.append(f"- data: {r.get('new', 0)} new samples, {r.get('replayed', 0)} replayed from earlier "
                         "nights")
        if t.get("lora"):
            lo = t["lora"]
            lines.append(f"- LoRA: r = {lo.get('r')}, alpha = {lo.get('alpha')}, "
                         f"{'merged into the weights' if lo.get('merge', True) else 'adapter only'}")
        lines.append("")
    leaves = facts.heldout.get("leaves") or {}
    if leaves:
        lines += ["## Evaluation: held-out seeds", "",
                  "Per leaf, on seed pairs no teacher, training set or replay ever saw; `ref_nll` is nats per "
                  "token of the reference answer (lower is better).", "",
                  "| leaf | ref_nll | vs parent | vs base | ROUGE-L |", "|---|---|---|---|---|"]
        for leaf, row in sorted(leaves.items()):
            nll, rouge = row.get("ref_nll") or {}, row.get("rouge_l") or {}
            lines.append(f"| {leaf} | {_num(nll.get('candidate'))} | {_num(nll.get('delta'), sign=True)} | "
                         f"{_num(nll.get('delta_base'), sign=True)} | {_num(rouge.get('candidate'))} |")
        drift = facts.heldout.get("drift") or {}
        if drift.get("candidate") is not None:
            lines += ["", f"Drift on the base model's everyday replies: {_num(drift.get('candidate'))} "
                      f"({_num(drift.get('delta_base'), sign=True)} against the base)."]
        lines.append("")
    if facts.judged:
        lines += ["## Evaluation: judged", "", "| leaf | before | after | verdict |", "|---|---|---|---|"]
        for leaf, row in sorted(facts.judged.items()):
            lines.append(f"| {leaf} | {_num(row.get('mean_before'))} | {_num(row.get('mean_after'))} | "
                         f"{row.get('verdict', '')} |")
        lines.append("")
    return lines


def _leaves(leaves: Any) -> str:
    leaves = list(leaves or [])
    if not leaves:
        return "—"
    shown = ", ".join(f"`{leaf}`" for leaf in leaves[:5])
    return shown + (f" and {len(leaves) - 5} more" if len(leaves) > 5 else "")


def _num(value: Any, sign: bool = False) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:+.3f}" if sign else f"{value:.3f}"

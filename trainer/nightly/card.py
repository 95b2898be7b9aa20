"""A promoted night's model card: the nights from the base to this one (from the registry), the settings that
trained it and its held-out and judged measures, turned into :class:`~labrador.trainer.models.card.CardFacts`.
Pure over the run records; the night writes the card into the promoted ``final/`` folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..models.card import CardFacts, base_facts
from ..train.config import TrainConfig


def lineage(record: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every night from the base to ``record``, oldest first: what each added, changed and removed."""
    by_id = {r["id"]: r for r in runs}
    chain = [record]
    while chain[-1].get("parent") and chain[-1]["parent"] in by_id and len(chain) <= len(by_id):
        chain.append(by_id[chain[-1]["parent"]])
    out = []
    for night in reversed(chain):
        parent = by_id.get(night.get("parent") or "")
        before = set((parent or {}).get("leaf_hashes") or {})
        regenerated = list(night.get("leaves_regenerated") or [])
        out.append({"id": night["id"], "taxonomy_commit": night.get("taxonomy_commit", ""),
                    "added": [leaf for leaf in regenerated if leaf not in before],
                    "changed": [leaf for leaf in regenerated if leaf in before],
                    "removed": list(night.get("leaves_removed") or []),
                    "pull_requests": list(night.get("pull_requests") or [])})
    return out


def night_card(record: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], base_spec: str,
               config: TrainConfig) -> CardFacts:
    """The card of ``record``'s model. ``base_spec``: ``[nightly] base_model`` (a catalogue name, a derive: cut
    or a folder); ``config``: the training config the night ran."""
    base, licence = base_facts(base_spec)
    training: dict[str, Any] = {"phases": [{"name": p.name, "lr": p.lr, "epochs": p.epochs,
                                            "effective_batch": p.effective_batch} for p in config.phases]}
    if record.get("distill"):
        training["distill"] = record["distill"]
    night = (record.get("samples") or {}).get("night")
    if night:
        training["replay"] = night
    lora = getattr(config, "lora", None)
    if lora is not None:
        training["lora"] = {"r": lora.r, "alpha": lora.alpha, "merge": lora.merge}
    judged = {leaf: {"mean_before": v.get("baseline"), "mean_after": v.get("model"), "verdict": v.get("verdict")}
              for leaf, v in ((record.get("branch_eval") or {}).get("leaves") or {}).items()}
    return CardFacts(name=f"labrador-{record['id']}", base_model=base, license=licence,
                     summary=f"The model Labrador's nightly job promoted as {record['id']} (taxonomy commit "
                     f"`{str(record.get('taxonomy_commit', ''))[:12]}`), grown from `{base}` one night at a time: "
                     "community taxonomy leaves turned into synthetic training data (LAB), trained with replay "
                     "of earlier nights so that it keeps what it knew.",
                     lineage=lineage(record, runs), training=training, heldout=record.get("heldout") or {},
                     judged=judged)

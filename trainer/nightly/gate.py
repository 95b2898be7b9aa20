"""The gate: whether tonight's model replaces the last promoted one. Pure: settings and measurements in, a
verdict and its reason (in words a maintainer can act on) out."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .settings import NightlySettings


def gate(s: NightlySettings, metrics: dict[str, Any], branch: Mapping[str, Any] | None = None,
         changed: Collection[str] = (), heldout: Mapping[str, Any] | None = None) -> tuple[bool, str]:
    """The loss gate, then (when measured) the held-out seeds' gate, then (when the night was judged) the
    judged gate; the first failure is the reason."""
    ok, reason = _loss_gate(s, metrics)
    if ok and heldout is not None:
        ok, seeds = heldout_gate(s, heldout, changed)
        reason = f"{reason}; {seeds}" if ok else seeds
    if not ok or branch is None:
        return ok, reason
    ok, judged = judged_gate(s, branch, changed)
    return ok, (f"{reason}; {judged}" if ok else judged)


def heldout_gate(s: NightlySettings, heldout: Mapping[str, Any], changed: Collection[str]) -> tuple[bool, str]:
    """On the held-out seeds nobody trained on: no changed leaf's ``ref_nll`` may rise by more than
    ``max_leaf_nll_rise``, general ability may drift by at most ``max_drift``, and the changed leaves' mean
    ``ref_nll`` gain over the parent must reach ``min_heldout_gain``."""
    leaves = heldout.get("leaves") or {}
    deltas = {leaf: v["ref_nll"]["delta"] for leaf, v in leaves.items()
              if leaf in changed and (v.get("ref_nll") or {}).get("delta") is not None}
    risen = sorted(((d, leaf) for leaf, d in deltas.items() if d > s.max_leaf_nll_rise), reverse=True)
    if risen:
        named = ", ".join(f"{leaf} ({d:+.3f})" for d, leaf in risen[:5])
        more = f" and {len(risen) - 5} more" if len(risen) > 5 else ""
        return False, (f"held-out seeds: ref_nll rose by more than max_leaf_nll_rise {s.max_leaf_nll_rise} on "
                       f"{named}{more} (nats/token)")
    drift = (heldout.get("drift") or {}).get("delta")
    if drift is not None and drift > s.max_drift:
        return False, (f"drift: the model's loss on the base model's own everyday replies rose {drift:+.3f} "
                       f"nats/token, above max_drift {s.max_drift}")
    shown = "" if drift is None else f", drift {drift:+.3f}"
    if not deltas:
        return True, f"no changed leaf has a held-out seed{shown}"
    gain = -sum(deltas.values()) / len(deltas)
    if gain < s.min_heldout_gain:
        worst = ", ".join(f"{leaf} ({d:+.3f})" for leaf, d in sorted(deltas.items(), key=lambda x: -x[1])[:3])
        return False, (f"held-out seeds: the changed leaves' ref_nll gained {gain:+.3f} nats/token on average "
                       f"(n = {len(deltas)}), below min_heldout_gain {s.min_heldout_gain}; worst: {worst}")
    return True, f"held-out seeds: ref_nll gain {gain:+.3f} (n = {len(deltas)}){shown}"


def judged_gate(s: NightlySettings, branch: Mapping[str, Any], changed: Collection[str]) -> tuple[bool, str]:
    """A judge that failed too often decides nothing; no judged leaf may drop by more than
    ``max_leaf_regression``; the changed leaves' mean delta must reach ``min_mean_delta``."""
    rate = branch["judge_error_rate"]
    if rate > s.max_judge_error_rate:
        return False, (f"the judge failed on {rate:.0%} of its verdicts (max_judge_error_rate "
                       f"{s.max_judge_error_rate:.0%}): the night cannot be judged (check the teacher)")
    leaves = branch["leaves"]
    fallen = sorted(((v["delta"], leaf) for leaf, v in leaves.items()
                     if v["delta"] is not None and v["delta"] < -s.max_leaf_regression))
    if fallen:
        named = ", ".join(f"{leaf} ({delta:+.2f})" for delta, leaf in fallen[:5])
        more = f" and {len(fallen) - 5} more" if len(fallen) > 5 else ""
        return False, (f"judged scores fell by more than max_leaf_regression {s.max_leaf_regression} on "
                       f"{named}{more}")
    deltas = [v["delta"] for leaf, v in leaves.items() if v["delta"] is not None and leaf in changed]
    if deltas:
        mean = sum(deltas) / len(deltas)
        if mean < s.min_mean_delta:
            return False, (f"the changed leaves' judged score moved {mean:+.2f} on average, below min_mean_delta "
                           f"{s.min_mean_delta}")
        return True, f"judged {mean:+.2f} on average over {len(deltas)} changed leaf(s)"
    return True, "no changed leaf could be judged"


def _loss_gate(s: NightlySettings, m: dict[str, Any]) -> tuple[bool, str]:
    """Promote only a model that is measurably sound: every loss it was measured on is finite, tonight's is
    below a uniform guess (ln V), no earlier night is forgotten beyond the limit, and (by default) tonight's
    held-out loss improves on the parent's. A night that could not be measured is not promoted by default."""
    broken = m.get("non_finite") or []
    if broken:
        return False, (f"the new model's loss on {', '.join(broken)} is not finite: the model is broken "
                       "(never promoted)")
    worst = max((v for v in m["forgetting"].values() if v is not None), default=0.0)
    if worst > s.gate_max_forgetting:
        night = max(m["forgetting"], key=lambda k: m["forgetting"][k] if m["forgetting"][k] is not None else -1e9)
        return False, (f"forgetting of {night} is {worst:+.3f} nats/token, above gate_max_forgetting "
                       f"{s.gate_max_forgetting}")
    new, before, what = m["heldout_loss"]["tonight"], m["heldout_loss"]["tonight_parent"], "tonight's held-out loss"
    n = (m.get("sizes") or {}).get("tonight")
    counted = f" (n = {n})" if new is not None and n is not None else ""  # a mean is never shown without its n
    if new is None:  # no held-out sample tonight: the changed leaves' seed examples are the measure left
        new, before = m["seed_loss"]["new"], m["seed_loss"]["parent"]
        what = "the loss on the changed leaves' seed examples (no held-out sample tonight)"
    if new is None:
        if s.gate_promote_unmeasured:
            return True, f"nothing of tonight's data could be measured (gate_promote_unmeasured); worst " \
                         f"forgetting {worst:+.3f}"
        return False, ("nothing of tonight's data could be measured (no held-out sample, no seed example): not "
                       "promoted (raise heldout_fraction, or set gate_promote_unmeasured = true)")
    guess = m.get("uniform_loss")
    if guess is not None and new >= guess:
        return False, (f"{what} is {new:.3f} nats/token, worse than guessing (ln V = {guess:.3f}): the model "
                       "has not learned to speak")
    if s.gate_require_improvement and before is not None and not (new < before):
        return False, (f"{what} {new:.3f}{counted} did not improve on the parent model's {before:.3f} (rule "
                       "`gate_require_improvement`)")
    rule = "gate_require_improvement" if s.gate_require_improvement and before is not None else "gate_max_forgetting"
    return True, f"{what} {_fmt(before)} -> {new:.3f}{counted}, rule `{rule}`; worst forgetting {worst:+.3f}"


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"

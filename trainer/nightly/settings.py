"""``[nightly]`` of labrador.toml: what a night is besides its teacher (``[teacher]``) and how it trains.

The night composes instead of copying: ``[nightly.train]`` *is* a training config (the keys, defaults and
checks of ``labrador train``'s YAML, :class:`~labrador.trainer.train.config.TrainConfig`) without the three things the
night fills in (``model``, ``output_dir`` and each phase's ``data``), and ``recipe`` names a mixing recipe whose
one phase is tonight's (replaying the dataset ``earlier-nights``). ``--quick`` starts from :data:`QUICK`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labrador.validators.settings import ConfigError, read_toml, section_values

from ..models.catalogue import CATALOGUE
from ..train.config import TrainConfig, TrainConfigError, parse_config

SECTION = "nightly"
NIGHT_PHASE = "night"
DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "nightly.yaml"
QUICK_RECIPE = DEFAULT_RECIPE.with_name("nightly_quick.yaml")  # --quick: a small replay (a CPU night in minutes)
EMBEDDED = "embedded"  # as [nightly.train.distill] teacher_model: the embedded teacher, pulled when needed
REPLAY_DATASET = "earlier-nights"  # the replay source a night's recipe draws earlier nights' data from

# the embedded defaults: a CPU night in minutes that teaches the embedded model itself (all 30 layers, fp32)
QUICK_BASE_MODEL = "smollm2-135m-instruct"  # a catalogue name: pulled on first use, like --teacher embedded
QUICK_EARLIER_LEAVES = 3  # unchanged leaves judged for forgetting under --quick (each costs 2 answers, 2 verdicts)
QUICK_TRAIN: dict[str, Any] = {
    "max_seq_len": 512, "max_tokens_per_batch": 2048, "heldout_fraction": 0.1, "min_sample_tokens": 8,
    "save_every_steps": 10, "keep_checkpoints": 1,
    "phases": [{"name": NIGHT_PHASE, "epochs": 1, "lr": 2.0e-5, "effective_batch": 4, "warmup_steps": 2}],
    # the teacher is the model the lineage started from: a pull toward it, a guard against forgetting
    "distill": {"teacher_model": EMBEDDED, "lambda": 0.5},
}
if TYPE_CHECKING:  # the bounded types of these keys (read by validators.settings)
    from labrador.validators.typed import Concurrency, Count, Flag, Number, Rate, Steps, Text


@dataclass(frozen=True)
class NightlySettings:
    base_model: Text = ""  # HF folder the first night starts from (--quick: a student derived from the embedded model)
    heal_steps: Steps = 0  # a derive: base model is first healed by distilling its parent this many steps (0: not)
    start_from: Literal["promoted", "base"] = "promoted"  # on top of the last promoted model, or always from the base
    seed: Count = 0  # generation and mixing seed (training has its own: [nightly.train] seed)
    recipe: Text = ""  # a mixing recipe with one phase (default: trainer/recipes/nightly.yaml; --quick: nightly_quick)
    gate_max_forgetting: Number = 0.25  # an earlier night's held-out loss may rise at most this much (nats/token)
    gate_require_improvement: Flag = True  # tonight's held-out loss must beat the parent model's
    gate_promote_unmeasured: Flag = False  # promote a night whose loss could not be measured at all (no data)
    include_seeds: Flag = False  # also train on the changed leaves' own seed examples (marked origin "seed")
    branch_eval: Flag = True  # judge the candidate against its parent on the changed leaves' seed questions
    gate_judged: Flag = True  # the judged evaluation gates promotion (false: judged and reported only)
    choose_checkpoint: Flag = False  # judge each kept checkpoint of tonight's phase and promote the best
    eval_earlier_leaves: Concurrency = 10  # also judge this many unchanged earlier leaves (a fixed sample: forgetting)
    max_leaf_regression: Number = 1.0  # no judged leaf's mean score (1..10) may drop by more than this
    min_mean_delta: Number = 0.0  # the changed leaves' mean score delta must be at least this
    max_judge_error_rate: Rate = 0.1  # a judge that fails more often than this cannot pass a night
    min_heldout_gain: Number = 0.0  # the changed leaves' mean held-out ref_nll gain (nats/token) must reach this
    max_leaf_nll_rise: Number = 0.1  # no changed leaf's held-out ref_nll may rise by more than this (nats/token)
    max_drift: Number = 0.1  # drift_nll (the base model's everyday replies) may rise by at most this (nats/token)
    report_url: Text = ""  # link in the pull-request comments; "{id}" becomes the night's id
    github_token_env: Text = ""  # NAME of a variable holding a token for those comments (default: the bot's App)
    train: TrainConfig | None = None  # [nightly.train], parsed once by the trainer's rules (None: its defaults)

    def train_config(self, model: str, output_dir: Path, data: Path, source: str = "[nightly]") -> TrainConfig:
        """Tonight's training config: the ``[nightly.train]`` template with the model, the output folder and the
        data filled in (parsed once, at load; filling in re-checks nothing the template has not passed)."""
        template = self.train or train_template({}, source)
        phase = replace(template.phases[0], data=str(data))
        return replace(template, model=model, output_dir=str(output_dir), phases=(phase,), source=source)

    def recipe_path(self) -> Path:
        return Path(self.recipe) if self.recipe else DEFAULT_RECIPE


def train_template(table: Mapping[str, Any], source: str) -> TrainConfig:
    """``[nightly.train]`` as a training config, checked by the trainer's own rules, with placeholders for what
    each night fills in (the model, the output folder, the one phase's data)."""
    raw = dict(table)
    phases = raw.get("phases") or [{}]
    if not isinstance(phases, list) or len(phases) != 1 or not isinstance(phases[0], dict):
        raise TrainConfigError(f"{source}: train.phases: a night trains one phase (its mix); give one table")
    raw["phases"] = [{"name": NIGHT_PHASE, **phases[0], "data": "data"}]
    return parse_config({**raw, "model": "model", "output_dir": "out"}, source=source)


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; a night's one phase is merged key by key."""
    out = {**base, **top}
    if "phases" in base and "phases" in top and isinstance(top["phases"], list) and len(top["phases"]) == 1 \
            and isinstance(top["phases"][0], dict):
        out["phases"] = [{**base["phases"][0], **top["phases"][0]}]
    return out


def _against(table: dict[str, Any], keys: tuple[str, ...], path: Path) -> dict[str, Any]:
    """``table`` with its relative path ``keys`` made absolute against the settings file's folder."""
    for key in keys:
        value = table.get(key)
        if isinstance(value, str) and value and value != EMBEDDED and not Path(value).expanduser().is_absolute():
            table[key] = str((Path(path).parent / table[key]).resolve())
    return table


def load_nightly(path: Path | None, quick: bool = False) -> NightlySettings:
    """``[nightly]`` of ``path`` over the defaults (the embedded ones with ``quick``), checked before any work:
    the train table by the trainer's rules, the recipe by the mixing rules."""
    where = f"{path or 'labrador.toml'}: [{SECTION}]"
    values = section_values(path, SECTION, NightlySettings(), exclude=("train",), paths=("recipe",),
                            legacy=("train",))  # train: checked as a training config below
    raw = read_toml(Path(path)).get(SECTION, {}) if path is not None and Path(path).is_file() else {}
    table = raw.get("train", {}) if isinstance(raw, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{where} train must be a table ([nightly.train])")
    train = _merge(QUICK_TRAIN if quick else {}, table)
    if isinstance(train.get("distill"), dict) and path is not None:  # its paths mean what they mean in the file
        train["distill"] = _against(dict(train["distill"]), ("teacher_model", "teacher", "teacher_cache"), path)
        if isinstance(train["distill"].get("dae"), dict):
            train["distill"]["dae"] = _against(dict(train["distill"]["dae"]), ("expert", "reference"), path)
    if values.get("base_model") and not values["base_model"].startswith("derive:") and path is not None \
            and values["base_model"] not in CATALOGUE:
        bm = Path(values["base_model"]).expanduser()
        values["base_model"] = str(bm if bm.is_absolute() else (Path(path).parent / bm).resolve())
    base = NightlySettings()
    if quick:
        # no judged evaluation: a 135 M judge's scores carry no signal, and the held-out seeds measure without one
        base = replace(base, base_model=QUICK_BASE_MODEL, include_seeds=True, gate_max_forgetting=0.5,
                       branch_eval=False, gate_judged=False, eval_earlier_leaves=QUICK_EARLIER_LEAVES,
                       recipe=str(QUICK_RECIPE))
    # before any work: the training values by the trainer's rules, the recipe by the mixing rules (both raise
    # subclasses of ConfigError)
    settings = replace(base, **values, train=train_template(train, f"{where} train"))
    night_recipe(settings)
    if settings.train is not None and settings.train.lora is not None and not settings.train.lora.merge:
        raise ConfigError(f"{where} train.lora.merge: a night's model must be a whole model folder (it is measured, "
                          "served and the next night's start): keep merge = true")
    if not settings.base_model:
        raise ConfigError(f"{where} base_model is not set: name the model folder the first night starts from (or "
                          "run `labrador nightly --quick` for the embedded defaults)")
    return settings


def night_recipe(settings: NightlySettings) -> Any:
    """The night's mixing recipe, which must have one phase (tonight's)."""
    from ..mixing import RecipeError, load_recipe

    recipe = load_recipe(settings.recipe_path())
    if len(recipe.phases) != 1:
        raise RecipeError(f"{recipe.source}: a night's recipe has exactly one phase (tonight's), not "
                          f"{len(recipe.phases)}")
    return recipe

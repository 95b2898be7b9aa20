"""``labrador evaluate``: did a model learn each leaf better than its baseline? A thin edge over
:func:`labrador.trainer.evaluation.evaluate_branch`: choose leaves with the checker's own rule, build the judge from
the teacher settings, show progress, print the table or the JSON, exit 1 when a leaf regressed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labrador.validators.exits import SDG_MODULES, Exit, UsageError, command, require_extra

MAX_NEW_TOKENS = 32768


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="judge a model against a baseline on each leaf's seed questions",
        description="Both models answer each leaf's seed questions (greedy, their own chat template; a knowledge "
                    "leaf's context comes with its question, as in the training data). A judge scores every "
                    "answer from 1 to 10 against the seed's answer, each answer alone. Per leaf: mean scores, "
                    "delta and verdict (improved / regressed when the mean moved by at least [evaluate] "
                    "min_delta, new when the baseline's labrador-leaves.json lacks the leaf, unjudged when the "
                    "judge gave no usable verdict). Exit status 1 when a leaf regressed or could not be judged, "
                    "2 for a usage error (nothing is loaded before every argument is checked). Settings: "
                    "[evaluate] in labrador.toml.")
    p.add_argument("leaves", nargs="*", type=Path, metavar="PATH",
                   help="leaf folders or folders above them (default: every leaf of the taxonomy)")
    p.add_argument("--model", required=True, metavar="DIR", help="the model to evaluate (a Hugging Face folder)")
    p.add_argument("--baseline", required=True, metavar="DIR", help="the model it is compared with")
    p.add_argument("--judge", metavar="SPEC", help="the judge, any teacher spec: embedded, http(s)://HOST/v1, a "
                   "model folder, vllm:PATH (default: the configured [teacher])")
    p.add_argument("--out", metavar="FILE", type=Path, help="also write the result JSON here (and FILE's "
                   "stem + .details.jsonl: every question, both answers, scores and explanations); a file that "
                   "exists must be one labrador evaluate wrote")
    p.add_argument("--format", choices=("human", "json"), default="human", help="stdout: a table (default) or "
                   "the result JSON")
    p.add_argument("--taxonomy", metavar="DIR", type=Path, help="taxonomy folder (default: ./taxonomy or .)")
    p.add_argument("--config", metavar="FILE", type=Path, help="settings file (default: nearest labrador.toml)")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="answer length cap ([evaluate] max_new_tokens)")
    p.add_argument("--metrics", metavar="LIST", help="comma-separated: ref_nll (nats/token of the seed's answer, "
                   "teacher-forced), rouge_l (ROUGE-L F1 of the greedy answer), judge (the judge's 1-10 score); "
                   "default ref_nll,rouge_l, plus judge when --judge is given")
    p.add_argument("--heldout", action="store_true", help="only each leaf's held-out seeds ([evaluate] holdout_seeds "
                   "per leaf, the ones a night never trains on); default: every seed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run_evaluate)


@command("evaluate")
def run_evaluate(args: argparse.Namespace) -> int:
    require_extra("sdg", SDG_MODULES)  # model folders also need [train]: their backend says so when loading
    from labrador.validators.config import find_config, load_config
    from labrador.validators.tree import leaves_from_args, repo_root, taxonomy_from_arg

    from ..sdg.prompting import PromptError
    from ..teachers import TeacherError
    from ..teachers.config import HOW_TO_CONFIGURE, build_teacher, load_teacher
    from .answering import check_model
    from .judging import judge_prompt
    from .metrics import parse_metrics
    from .outfile import MARKER, VERSION, OutFileError, check_out, write_out
    from .output import table
    from .questions import EvaluationError, leaf_questions
    from .run import evaluate_branch
    from .seen import read_seen
    from .settings import load_evaluate
    from .verdicts import any_regressed, unjudged

    # every argument is checked before anything loads: a typo costs a second, not a judge's start-up
    try:
        names = parse_metrics(args.metrics) if args.metrics else ("ref_nll", "rouge_l", *(("judge",) if args.judge
                                                                                         else ()))
    except ValueError as exc:
        raise UsageError(f"--metrics: {exc}") from None
    for flag, spec in (("--model", args.model), ("--baseline", args.baseline)):
        try:
            check_model(spec, flag)
        except EvaluationError as exc:
            raise UsageError(str(exc)) from None
        if set(names) - {"judge"} and not Path(spec).is_dir():
            raise UsageError(f"{flag} {spec}: ref_nll and rouge_l need a model folder (its weights); for a served "
                             "model use --metrics judge")
    if args.out is not None:
        try:
            check_out(args.out)
        except OutFileError as exc:
            raise UsageError(str(exc)) from None
    taxonomy = taxonomy_from_arg(args.taxonomy)
    path = args.config if args.config is not None else find_config(taxonomy)
    if args.config is not None and not args.config.is_file():
        raise UsageError(f"config file {args.config} does not exist")
    config, settings = load_config(path), load_evaluate(path)  # a ConfigError is a usage error (exits.command)
    judge_settings = load_teacher(path, spec=args.judge)
    if args.max_new_tokens is not None:
        if not 1 <= args.max_new_tokens <= MAX_NEW_TOKENS:
            raise UsageError(f"--max-new-tokens must be between 1 and {MAX_NEW_TOKENS}")
        settings = settings.merged(max_new_tokens=args.max_new_tokens)
    judged = "judge" in names
    if judged and not judge_settings.spec:
        raise UsageError(HOW_TO_CONFIGURE + ", or pass --judge SPEC")
    leaves = leaves_from_args(taxonomy, args.leaves)
    if args.heldout and settings.holdout_seeds < 1:
        raise UsageError("--heldout needs [evaluate] holdout_seeds of 1 or more")
    try:
        questions = [q for qs in leaf_questions(taxonomy, leaves, config, settings.questions_per_leaf,
                                                settings.holdout_seeds if args.heldout else 0).values() for q in qs]
    except EvaluationError as exc:
        raise UsageError(str(exc)) from None
    if not questions:
        raise UsageError("no seed question in the chosen leaves")
    root = repo_root(taxonomy) if taxonomy.exists() else None
    prompts = root / "sdg" / "prompts" if root is not None and (root / "sdg" / "prompts").is_dir() else None
    if judged:
        try:
            judge_prompt(prompts)  # a broken override of the judge's prompt, before any model loads
        except PromptError as exc:
            raise UsageError(f"the judge's prompt: {exc}") from None
        try:
            judge = build_teacher(judge_settings)
        except (ValueError, ImportError, OSError, RecursionError, TeacherError) as exc:
            raise UsageError(f"judge {judge_settings.label!r}: {exc}") from None
        with _Stages(show=not args.quiet) as progress:
            try:
                result, details = evaluate_branch(str(args.model), str(args.baseline), judge, questions, settings,
                                                  seen=read_seen(args.baseline), prompts=prompts, progress=progress)
            except EvaluationError as exc:
                raise UsageError(str(exc)) from None
    else:
        result, details = _unjudged(args, questions)
    if set(names) - {"judge"}:
        result = _with_metrics(args, result, questions, names, settings)
    result = {**result, MARKER: VERSION, "metrics_measured": list(names)}  # stdout's JSON is the file's
    if args.out is not None:
        try:
            write_out(args.out, result, details)
        except OSError as exc:  # it was writable a moment ago: still, the results go to stdout, never lost
            print(json.dumps(result, indent=2, sort_keys=True))
            raise UsageError(f"--out {args.out} could not be written ({exc}); the result JSON is on stdout") from None
    if args.format == "json":
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        from rich.console import Console

        from .output import metrics_table

        console = Console()
        console = console if console.is_terminal else Console(width=200)
        if judged:
            console.print(table(result))
        if set(names) - {"judge"}:
            console.print(metrics_table(result))
    failed = unjudged(result)
    if failed:
        print(f"labrador evaluate: could not judge {len(failed)} of {len(result['leaves'])} leaves "
              f"({', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''}): the judge gave no usable verdict "
              f"(judge error rate {result['judge_error_rate']:.0%}; the reasons are in the details)", file=sys.stderr)
        return Exit.FAILED  # like a regression: the evaluation cannot vouch for the model
    worse = any(v.get("metrics_verdict") == "regressed" for v in result["leaves"].values())
    return Exit.FAILED if any_regressed(result) or worse else Exit.OK


def _unjudged(args: argparse.Namespace, questions: list) -> tuple[dict, list]:
    """The result's shape without a judge: no scores; verdicts come from the metrics."""
    leaves: dict = {}
    for q in questions:
        leaves.setdefault(q.leaf, {"model": None, "baseline": None, "delta": None, "questions": 0,
                                   "verdict": "unjudged"})["questions"] += 1
    result = {"judge": None, "model": str(args.model), "baseline": str(args.baseline), "judge_error_rate": 0.0,
              "leaves": leaves}
    return result, [{"leaf": q.leaf, "question": q.prompt, "reference": q.reference} for q in questions]


def _with_metrics(args: argparse.Namespace, result: dict, questions: list, names: tuple, settings: object) -> dict:
    """``result`` with each leaf's ``metrics`` (``{NAME: {model, baseline, delta}}``) and ``metrics_verdict``,
    and the top-level ``drift``; without a judge the metrics' verdict is the leaf's verdict."""
    from labrador.validators.holdout import HeldOut

    from .metrics import metric_verdict, model_vs_baseline

    items = [HeldOut(q.leaf, "", q.prompt, q.reference) for q in questions]
    quiet = args.quiet or not sys.stderr.isatty()
    measured = model_vs_baseline(str(args.model), str(args.baseline), items, names,
                                 min(settings.max_new_tokens, 256),  # type: ignore[attr-defined]
                                 progress=(lambda stage: None) if quiet else
                                 (lambda stage: print(f"measuring: {stage}", file=sys.stderr)))
    leaves = {}
    for leaf, v in result["leaves"].items():
        row = measured["leaves"].get(leaf) or {}
        verdict = metric_verdict(row, settings.min_nll_delta)  # type: ignore[attr-defined]
        leaves[leaf] = {**v, "metrics": row, "metrics_verdict": verdict,
                        **({"verdict": verdict} if "judge" not in names else {})}
    return {**result, "leaves": leaves, "drift": measured["drift"]}


class _Stages:
    """The stages come one after another (model answers, baseline answers, judging): each gets its own
    :class:`~labrador.validators.progress.Progress`, a bar on a terminal and a line every 30 s in a log;
    nothing with ``--quiet``."""

    LABELS = {"model": "model answers", "baseline": "baseline answers", "judge": "judging"}

    def __init__(self, show: bool = True) -> None:
        self.show, self.stage, self.bar = show, "", None

    def __enter__(self) -> _Stages:
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.LABELS:
            return
        if stage != self.stage:
            from labrador.validators.progress import Progress

            self.__exit__(None, None, None)
            self.stage, self.bar = stage, Progress(self.LABELS[stage], total, show=self.show).__enter__()
        self.bar.update(done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
            self.bar = None

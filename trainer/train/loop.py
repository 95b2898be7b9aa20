"""The training recipe: setup, train each phase, save, evaluate. One loop; the loss step is passed in.

Per optimizer step: every micro-batch's summed loss is scaled by ``world / loss_tokens(effective batch)``
(all micro-batches, all ranks; known from the plan, so no extra communication) and back-propagated with
gradient sync only on the rank's last micro-batch; then clip, AdamW, and the learning rate set from the
step number (warmup then cosine: a pure function, so resuming needs nothing but the step).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from labrador.validators.atomic import atomic_write_json, publish_dir
from labrador.validators.locks import PidLock

from . import checkpoint as ckpt
from .batch import collate_packed, collate_padded
from .config import PhaseConfig, TrainConfig, TrainConfigError, TrainFailed
from .data import Encoded
from .export import whole_folder
from .lora import adapter_state, merged_state
from .loss import LossStep, StepLoss, sft_loss
from .parallel import FSDP_ENV, Replicated, Sharded, fsdp_settings
from .prepare import Prepared, prepare
from .report import MetricsLog, plot_losses, progress_bar, write_summary

LOCK = ".lock"  # in output_dir while a run writes there
LossStepFactory = Callable[[TrainConfig, Any], LossStep]  # (config, accelerator) -> loss step


def lr_at(step: int, phase: PhaseConfig, total: int) -> float:
    """Linear warmup over ``warmup_steps``, then cosine down to ``lr * min_lr_ratio`` at the last step."""
    if phase.warmup_steps and step < phase.warmup_steps:
        return phase.lr * (step + 1) / phase.warmup_steps
    span = max(1, total - phase.warmup_steps)
    progress = min(1.0, (step - phase.warmup_steps) / span)
    floor = phase.lr * phase.min_lr_ratio
    return floor + (phase.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.float32  # bf16 on GPU comes from autocast (mixed precision) with fp32 master weights
    return getattr(torch, name)


def _attn(config: TrainConfig, device: torch.device) -> str:
    """flash-attention (varlen) where installed on a GPU; else per-sample SDPA when packing; else SDPA."""
    from . import attention

    attention.register()
    if config.attn_implementation != "auto":
        return config.attn_implementation
    if config.distill is not None and config.distill.attention > 0:
        return "eager"  # attention distillation needs the full maps
    if device.type == "cuda":
        import importlib.util

        if importlib.util.find_spec("flash_attn"):
            return "flash_attention_2"
    return attention.NAME if config.packing else "sdpa"


def load_model(path: str, config: TrainConfig, device: torch.device, attn: str | None = None) -> Any:
    """The model a phase starts from (a model folder, or an earlier phase's adapter folder folded into its
    base), with fresh LoRA adapters when the config asks for them."""
    from .lora import load_causal_lm, wrap

    model = load_causal_lm(path, dtype=_dtype(config.dtype, device), attn_implementation=attn or _attn(config, device))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.lora is not None:
        model = wrap(model, config.lora, checkpointing=config.gradient_checkpointing)
    return model


def make_accelerator(config: TrainConfig) -> tuple[Any, Replicated | Sharded]:
    """The accelerator (processes, reductions, trackers) and how the model is spread over its processes.
    An FSDP launch is sharded by our own code path (see ``parallel``), so accelerate is told not to."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one progress display: ours

    cuda = torch.cuda.is_available()
    bf16 = cuda and config.dtype == "auto" and torch.cuda.is_bf16_supported()
    launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
    fsdp = fsdp_settings()
    sharded = fsdp is not None and launched > 1  # one process has nothing to shard over
    if fsdp is not None:
        os.environ[FSDP_ENV] = "false"  # accelerate keeps the processes and reductions; we shard
    acc = Accelerator(mixed_precision="bf16" if bf16 and not sharded else "no", cpu=not cuda,  # sharded: mp_policy
                      log_with=list(config.trackers) or None,
                      project_config=ProjectConfiguration(project_dir=config.output_dir))
    if launched > acc.num_processes:  # each process would train alone and write the same folders
        raise TrainFailed(f"launched as {launched} processes, but accelerate set up {acc.num_processes}: "
                          f"refusing to train, since every process would train alone and overwrite "
                          f"{config.output_dir} (on CPUs, launch with --multi_gpu for DDP over gloo, or with an "
                          "FSDP config)")
    if sharded:
        return acc, Sharded(acc, fsdp, bf16)
    return acc, Replicated(acc)


def collate(samples: list[Encoded], config: TrainConfig, pad_id: int) -> dict[str, Any]:
    return collate_packed(samples) if config.packing else collate_padded(samples, pad_id)


@torch.no_grad()
def heldout_loss(model: Any, samples: list[Encoded], config: TrainConfig, accelerator: Any,
                 sharded: bool = False) -> float:
    """Mean token loss over ``samples``: every rank takes a slice and the sums are reduced; a sharded model
    runs every forward on all ranks together, so there each rank scores all samples."""
    from .evaluate import loss_sums

    rank, world = (0, 1) if sharded else (accelerator.process_index, accelerator.num_processes)
    total, count = loss_sums(model, samples[rank::world], config.max_tokens_per_batch, accelerator.device,
                             accelerator.autocast, config.loss_chunk_tokens)
    if sharded:
        return total / count if count > 0 else float("nan")
    sums = accelerator.reduce(torch.tensor([total, count], dtype=torch.float64, device=accelerator.device), "sum")
    return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")


class Trainer:
    """State of one ``labrador train`` run across its phases."""

    def __init__(self, config: TrainConfig, *, resume: bool = False, loss_factory: LossStepFactory | None = None,
                 progress: bool = True) -> None:
        self.config = config
        self.out = Path(config.output_dir)
        self.resume = resume
        self.loss_factory = loss_factory or (lambda cfg, acc: partial(sft_loss, chunk_tokens=cfg.loss_chunk_tokens))
        self.progress = progress
        self.accelerator, self.parallel = make_accelerator(config)
        self.metrics = MetricsLog(self.out / "metrics.jsonl")
        self.fingerprint = config.fingerprint()  # hashes the phase files once

    def say(self, text: str) -> None:
        if self.accelerator.is_main_process:
            print(text, file=sys.stderr, flush=True)

    # ---- setup -------------------------------------------------------------------------------------
    def claim(self) -> None:
        """Make ``output_dir`` this run's, or refuse with nothing changed: it must be empty (or new), or hold our
        own run (``run.json``) — continued with ``--resume`` and the same settings, or restarted when it made no
        progress yet (no checkpoint, no finished phase)."""
        run_file = self.out / "run.json"
        if not run_file.is_file():
            others = sorted(p.name for p in self.out.iterdir() if p.name != LOCK) if self.out.is_dir() else []
            if others:
                raise TrainConfigError(f"{self.out} is not empty and holds no Labrador training run (no run.json; "
                                       f"found {', '.join(others[:3])}); choose an empty or new output_dir "
                                       "(nothing was changed)")
            return
        try:
            old = json.loads(run_file.read_text(encoding="utf-8")).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            old = None
        progress = ckpt.checkpoints(self.out / "checkpoints") or any(
            (_read_json(self.config.phase_dir(p.name) / "eval.json") or {}).get("fingerprint") == old
            for p in self.config.phases)
        if not progress:
            return  # an earlier start that failed before its first checkpoint: nothing to keep
        if not self.resume:
            raise TrainConfigError(f"{self.out} already holds a run; pass --resume to continue it, or choose "
                                   "another output_dir (nothing was changed)")
        if old != self.fingerprint:
            raise TrainConfigError(f"{self.config.source}: the settings or the data changed since this run started "
                                   f"in {self.out}; --resume needs the same settings and phase files (or use a new "
                                   "output_dir)")

    def setup(self) -> Prepared:
        acc = self.accelerator
        if acc.is_main_process:
            self.claim()
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out / "run.json", {"fingerprint": self.fingerprint, "source": self.config.source})
            ckpt.clean_temporaries(self.out / "checkpoints")
            ckpt.prune(self.out / "checkpoints", self.config.keep_checkpoints)
        acc.wait_for_everyone()
        prep = prepare(self.config, world=acc.num_processes)
        torch.manual_seed(self.config.seed)
        return prep

    # ---- the run -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """The whole run, holding ``output_dir``'s lock (the main process) so no second run writes there."""
        if not self.accelerator.is_main_process:
            return self._run()
        self.claim()  # a folder that is not ours is refused before anything is written there, the lock included
        with PidLock(self.out / LOCK, "another `labrador train`"):
            return self._run()  # claimed again under the lock

    def _run(self) -> dict[str, Any]:
        prep = self.setup()
        acc = self.accelerator
        if self.config.trackers:
            acc.init_trackers("labrador")
        resumable = ckpt.usable(self.out / "checkpoints", self.say) if self.resume else []
        heldout: dict[str, dict[str, float]] = {}
        phase_rows: dict[str, dict[str, Any]] = {}
        for pi, phase in enumerate(self.config.phases):
            done = self.config.phase_dir(phase.name) / "eval.json"
            saved = _read_json(done)
            whole = whole_folder(self.config.phase_dir(phase.name) / "final")  # damaged since: made again
            if saved is not None and saved.get("fingerprint") == self.fingerprint and whole:
                heldout[phase.name], phase_rows[phase.name] = saved["heldout_loss"], saved["phase"]
                continue
            model = self.train_phase_resuming(prep, pi, [c for c in resumable if c[0] == pi])
            row = self.evaluate(model, prep, pi)
            del model
            heldout[phase.name] = row
            phase_rows[phase.name] = self._phase_row(prep, pi)
            if acc.is_main_process:
                atomic_write_json(done, {"heldout_loss": row, "phase": phase_rows[phase.name],
                                         "fingerprint": self.fingerprint})
            acc.wait_for_everyone()
        summary: dict[str, Any] = {}
        if acc.is_main_process:
            summary = write_summary(self.out / "summary.json", phase_rows, heldout)
            plot_losses(self.out / "loss.png", self.metrics.records(), heldout)
        if self.config.trackers:
            acc.end_training()
        acc.wait_for_everyone()
        return summary

    def train_phase_resuming(self, prep: Prepared, pi: int, candidates: list[tuple]) -> Any:
        """Phase ``pi`` from its newest checkpoint that loads; one that fails to load is reported and the
        previous one tried, down to the phase's start."""
        for candidate in candidates:
            try:
                return self.train_phase(prep, pi, candidate)
            except ckpt.DamagedCheckpoint as exc:
                self.say(f"{exc}; falling back to the previous checkpoint")
        return self.train_phase(prep, pi, None)

    def _phase_row(self, prep: Prepared, pi: int) -> dict[str, Any]:
        data = prep.data[pi]
        return {"train_samples": len(data.train), "heldout_samples": len(data.heldout), "dropped": data.dropped,
                "steps": len(prep.plans[pi]), "final": str(self.config.phase_dir(data.name) / "final")}

    def start_model(self, pi: int) -> str:
        if pi == 0:
            return self.config.model
        return str(self.config.phase_dir(self.config.phases[pi - 1].name) / "final")

    def train_phase(self, prep: Prepared, pi: int, resume_at: tuple | None) -> Any:
        """Train phase ``pi`` (from ``resume_at`` when given) and save its final folder; returns the model."""
        cfg, acc = self.config, self.accelerator
        phase = cfg.phases[pi]
        steps = prep.plans[pi]
        samples = prep.data[pi].train
        pad_id = prep.tokenizer.pad_token_id if prep.tokenizer.pad_token_id is not None else 0
        model = load_model(self.start_model(pi), cfg, acc.device)
        model.train()
        par = self.parallel
        if par.sharded and cfg.lora is not None:
            raise TrainConfigError(f"{cfg.source}: lora: not with an FSDP2 launch yet (peft's adapters are not "
                                   "sharded by our FSDP2 path); launch with DDP (--multi_gpu) or one process")
        model, opt = par.prepare(model, lambda m: torch.optim.AdamW(  # LoRA: the adapters' parameters only
            [p for p in m.parameters() if p.requires_grad], lr=phase.lr, betas=phase.betas,
            weight_decay=phase.weight_decay))
        loss_step = self.loss_factory(cfg, acc)
        first = 0
        global_base = sum(len(p) for p in prep.plans[:pi])
        if resume_at is not None:
            _, first, folder, _ = resume_at
            try:
                par.load_state(model, opt, folder)
            except Exception as exc:  # noqa: BLE001 - any unreadable part: fall back, never a traceback
                raise ckpt.DamagedCheckpoint(f"checkpoint {folder.name} cannot be loaded "
                                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
            self.say(f"resuming phase {phase.name} after step {first} of {len(steps)}, from {folder.name}")
        if acc.is_main_process:  # a resumed run's log ends where its weights come from
            self.metrics.truncate_to(global_base + first)
        bar = progress_bar(self.progress and acc.is_main_process, phase.name, len(steps), first)
        t_last = time.perf_counter()
        for k in range(first, len(steps)):
            step = steps[k]
            lr = lr_at(k, phase, len(steps))
            for group in opt.param_groups:
                group["lr"] = lr
            loss_tokens = sum(samples[i].loss_tokens for i in step.samples)
            scale = acc.num_processes / max(1, loss_tokens)
            micro = step.micro_batches(acc.process_index)
            # every rank runs the same number of forwards when sharded (each gathers weights from all ranks)
            runs = max(1, max(len(step.micro_batches(r)) for r in range(acc.num_processes)) if par.sharded
                       else len(micro))
            sums: dict[str, float] = {}
            real = padding = 0
            for j in range(runs):
                group_ids = micro[j] if j < len(micro) else []
                batch_samples = [samples[i] for i in group_ids] or [samples[step.samples[0]]]
                batch = collate(batch_samples, cfg, pad_id)
                with par.sync(model, j == runs - 1), acc.autocast():
                    out: StepLoss = loss_step(model, batch)
                    weight = scale if group_ids else 0.0  # a rank with no sample this step still syncs
                    acc.backward(out.total * weight)
                if group_ids:
                    for name, v in {"loss": float(out.total.detach()), **out.terms}.items():
                        sums[name] = sums.get(name, 0.0) + v
                    real += sum(len(s) for s in batch_samples)
                    padding += batch["input_ids"].numel() - sum(len(s) for s in batch_samples)
            grad_norm = par.clip(model, phase.max_grad_norm)
            if not math.isfinite(grad_norm):  # the same (reduced) value on every rank
                raise TrainFailed(f"phase {phase.name}, step {k + 1}: the gradient norm is {float(grad_norm)} "
                                  f"(loss {sums.get('loss', float('nan')) / max(1, loss_tokens):.4g}); training "
                                  f"stopped before the update, and nothing of this step was saved. Lower lr "
                                  f"({phase.lr}) or check the data")
            opt.step()
            opt.zero_grad(set_to_none=True)
            totals = torch.tensor([real, padding, *[sums.get(n, 0.0) for n in sorted(sums)]],
                                  dtype=torch.float64, device=acc.device)
            totals = acc.reduce(totals, reduction="sum")
            now = time.perf_counter()
            record = {
                "phase": phase.name, "step": k + 1, "global_step": global_base + k + 1, "lr": lr,
                "tokens": int(totals[0]), "padding_tokens": int(totals[1]), "loss_tokens": loss_tokens,
                "samples": len(step.samples), "grad_norm": float(grad_norm),
                "tokens_per_s": float(totals[0]) / max(now - t_last, 1e-9),
            }
            for n, v in zip(sorted(sums), totals[2:].tolist(), strict=True):
                record[n] = v / max(1, loss_tokens)
            if not all(math.isfinite(record[n]) for n in sums):
                raise TrainFailed(f"phase {phase.name}, step {k + 1}: the loss is {record.get('loss')}; training "
                                  f"stopped and nothing of this step was saved. Lower lr ({phase.lr}) or check "
                                  "the data")
            t_last = now
            if acc.is_main_process:
                self.metrics.append(record)
            if cfg.trackers:
                acc.log({f"train/{k2}": v for k2, v in record.items() if isinstance(v, float | int)},
                        step=record["global_step"])
            bar(k + 1, record)
            if cfg.save_every_steps and (k + 1) % cfg.save_every_steps == 0 and k + 1 < len(steps):
                self.save_checkpoint(pi, k + 1, record["global_step"], model, opt)
        bar(None, None)
        self.save_final(model, prep, phase.name)
        del opt
        return model

    def save_checkpoint(self, pi: int, step: int, global_step: int, model: Any, opt: Any) -> None:
        acc = self.accelerator
        state = {"phase_index": pi, "phase": self.config.phases[pi].name, "step": step, "global_step": global_step,
                 "fingerprint": self.fingerprint}
        ckpt.save_checkpoint(self.out / "checkpoints", pi, self.config.phases[pi].name, step, state,
                             lambda tmp: self.parallel.save_state(model, opt, tmp), keep=self.config.keep_checkpoints,
                             is_main=acc.is_main_process, barrier=acc.wait_for_everyone)

    def save_final(self, model: Any, prep: Prepared, phase: str) -> None:
        """``<phase>/final``: a Hugging Face folder in the save dtype, published by rename."""
        acc = self.accelerator
        final = self.config.phase_dir(phase) / "final"
        tmp = final.with_name(".final.tmp")
        state = self.parallel.full_state(model)
        if acc.is_main_process:
            if tmp.exists():
                shutil.rmtree(tmp)
            dtype = self._save_dtype()
            unwrapped = self.parallel.unwrap(model)
            lora = self.config.lora
            if lora is not None and not lora.merge:  # an adapter folder naming its base (the phase's start)
                state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in adapter_state(state).items()}
                unwrapped.save_pretrained(str(tmp), state_dict=state, safe_serialization=True)
                (tmp / "README.md").unlink(missing_ok=True)  # peft's template card, which names a local path
            else:
                if lora is not None:  # the adapters folded in: a plain model folder
                    state, unwrapped = merged_state(state, lora.scale), unwrapped.get_base_model()
                state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
                unwrapped.save_pretrained(str(tmp), state_dict=state, safe_serialization=True)
                _stamp_dtype(tmp / "config.json", dtype)
            prep.tokenizer.save_pretrained(str(tmp))
            final.parent.mkdir(parents=True, exist_ok=True)
            publish_dir(tmp, final)
        acc.wait_for_everyone()

    def _save_dtype(self) -> torch.dtype:
        if self.config.save_dtype != "auto":
            return getattr(torch, self.config.save_dtype)
        if self.accelerator.mixed_precision == "bf16" or getattr(self.parallel, "bf16", False):
            return torch.bfloat16
        return _dtype(self.config.dtype, self.accelerator.device)

    def evaluate(self, model: Any, prep: Prepared, pi: int) -> dict[str, float]:
        """Held-out loss of every phase up to ``pi`` with ``pi``'s final model."""
        row = {}
        for qi in range(pi + 1):
            row[self.config.phases[qi].name] = heldout_loss(model, prep.data[qi].heldout, self.config, self.accelerator,
                                                          self.parallel.sharded)
        self.accelerator.free_memory()
        return row


def _stamp_dtype(config: Path, dtype: torch.dtype) -> None:
    """The saved config names the dtype the weights were saved in (save_pretrained writes the in-memory
    model's), so ``from_pretrained(dtype="auto")`` loads them as written."""
    raw = json.loads(config.read_text(encoding="utf-8"))
    raw["dtype"] = str(dtype).removeprefix("torch.")
    config.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def train(config: TrainConfig, *, resume: bool = False, loss_factory: LossStepFactory | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Run every phase of ``config``; returns the summary (``heldout_loss``, ``forgetting``)."""
    return Trainer(config, resume=resume, loss_factory=loss_factory, progress=progress).run()

"""The training loop: optimiser, schedule, checkpoints with exact resume, logs, evaluation.

:class:`Trainer` runs a :class:`~vfxmatte.train.tasks.Task` for ``config.steps``
steps with AdamW/Adam, a linear warm-up followed by a cosine decay, gradient-norm
clipping and (on CUDA only) mixed precision. Every ``checkpoint_every`` steps it
writes ``<out_dir>/checkpoint.pt`` (model, optimiser, scheduler, RNG states and
step, atomically); ``resume=True`` continues from it and, because every batch is
a function of ``(seed, step)``, produces the same parameters as a run that was
never interrupted. It logs every ``log_every`` steps to ``log.csv`` and
``log.jsonl``, evaluates on held-out synthetic frames every ``eval_every`` steps
(writing PNG previews), and finally exports ``<out_dir>/<name>.safetensors``
through :func:`vfxmatte.weights.save_checkpoint`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vfxmatte.config import config_to_dict
from vfxmatte.devices import resolve_device
from vfxmatte.errors import ConfigError, WeightsError
from vfxmatte.io.atomic import atomic_path
from vfxmatte.train.config import TrainConfig, train_config_to_yaml
from vfxmatte.train.evaluation import (
    evaluate_colour,
    evaluate_matte,
    held_out_frames,
    write_preview,
)
from vfxmatte.train.tasks import Task, build_task
from vfxmatte.weights import load_checkpoint, load_state_dict, save_checkpoint

__all__ = ["Trainer", "lr_factor", "train"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOG_FIELDS = ("step", "lr", "seconds")
#: Held-out metrics reported (dtSSD needs consecutive frames; the held-out frames are not).
EVAL_METRICS = ("SAD", "MSE", "MAD", "Grad", "Conn")


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up, cosine to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Owns the model, optimiser, scheduler and the run folder of one training run."""

    def __init__(self, config: TrainConfig, task: Task | None = None) -> None:
        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed)
        self.device = resolve_device(config.device)
        self.task = task or build_task(config)
        self.model = self.task.model
        if config.init_weights:
            self._load_init(config.init_weights)
        self.task.setup(self.device)
        self.optimizer = self._optimizer()
        opt = config.optim
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, opt.warmup_steps, config.steps, opt.min_lr_ratio),
        )
        self.use_amp = bool(opt.amp and self.device.type == "cuda")
        self.step = 0
        self.out = Path(config.out_dir)
        self.extra: dict[str, Any] = {}
        self._held_out: list[Any] | None = None

    # ------------------------------------------------------------------ set-up

    def _optimizer(self) -> torch.optim.Optimizer:
        opt = self.config.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        betas = (opt.beta1, opt.beta2)
        if opt.optimizer == "adam":
            return torch.optim.Adam(params, lr=opt.lr, betas=betas, weight_decay=opt.weight_decay)
        return torch.optim.AdamW(params, lr=opt.lr, betas=betas, weight_decay=opt.weight_decay)

    def _load_init(self, path: str) -> None:
        checkpoint = load_checkpoint(path, self.task.kind)
        state = dict(checkpoint.state_dict)
        own = self.model.state_dict()
        if "band_logit" in own and "band_logit" not in state:
            # weights trained without a learned band gate start from its initial radius
            state["band_logit"] = own["band_logit"]
        load_state_dict(self.model, state, source=path)

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """Everything needed to continue bit-exactly (``weights_only``-loadable)."""
        return {
            "format": "vfxmatte-train/1",
            "step": self.step,
            "config": config_to_dict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": _numpy_state(),
                "python": json.dumps(random.getstate()),
            },
            "extra": json.dumps(self.extra),
            "task": self.task.extra_state(),
        }

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the resumable checkpoint (atomic) and return its path."""
        target = Path(path) if path else self.out / CHECKPOINT
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            torch.save(self.state(), str(tmp))
        return target

    def load(self, path: str | os.PathLike[str] | None = None) -> None:
        """Continue from a checkpoint written by :meth:`save`.

        Raises:
            WeightsError: missing or foreign file, or one from another task/architecture.
        """
        source = Path(path) if path else self.out / CHECKPOINT
        if not source.is_file():
            raise WeightsError(
                f"Cannot resume: no checkpoint at {source}; run once without --resume first."
            )
        try:
            state = torch.load(str(source), map_location="cpu", weights_only=True)
        except Exception as exc:  # zip/pickle errors of a damaged file
            raise WeightsError(f"{source}: not a readable training checkpoint ({exc}).") from exc
        if not isinstance(state, dict) or state.get("format") != "vfxmatte-train/1":
            raise WeightsError(f"{source}: not a vfxmatte training checkpoint.")
        saved = state["config"]
        for key in ("task", "arch", "seed"):
            if saved.get(key) != getattr(self.config, key):
                raise ConfigError(
                    f"Cannot resume: the checkpoint was made with {key}={saved.get(key)!r}, "
                    f"this config has {key}={getattr(self.config, key)!r}."
                )
        load_state_dict(self.model, state["model"], source=str(source))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        _set_numpy_state(state["rng"]["numpy"])
        random.setstate(_python_state(state["rng"]["python"]))
        self.task.load_extra_state(state.get("task", {}))
        self.extra = json.loads(state.get("extra", "{}"))
        self.step = int(state["step"])
        self._truncate_logs()
        log.info("Resumed from %s at step %d.", source, self.step)

    def _truncate_logs(self) -> None:
        """Drop log rows written after the checkpoint (they will be written again)."""
        for name in ("log.jsonl", "eval.jsonl"):
            path = self.out / name
            if path.is_file():
                lines = path.read_text(encoding="utf-8").splitlines()
                kept = [ln for ln in lines if ln and json.loads(ln)["step"] <= self.step]
                path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
        path = self.out / "log.csv"
        if path.is_file():
            with open(path, encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
            kept_rows = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= self.step]
            with open(path, "w", encoding="utf-8", newline="") as fh:
                csv.writer(fh).writerows(kept_rows)

    # ------------------------------------------------------------------ the loop

    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns the loss terms as floats."""
        self.model.train()
        batch = {k: v.to(self.device) for k, v in self.task.batch(self.step).items()}
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.use_amp
            else contextlib.nullcontext()
        )
        with autocast:
            terms = self.task.losses(batch, self.step)
        loss = terms["total"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # bfloat16 autocast keeps float32's range: no loss scaling needed
        grad_norm = 0.0
        if self.config.optim.grad_clip > 0:
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
            )
        self.optimizer.step()
        self.scheduler.step()
        self.task.after_step()
        self.step += 1
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["grad_norm"] = grad_norm
        return out

    def fit(self, resume: bool = False) -> Path:
        """Train to ``config.steps`` (or the time limit); returns the exported weights' path."""
        from tqdm import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load()
        elif (self.out / CHECKPOINT).exists():
            raise ConfigError(
                f"{self.out} already holds a training run; pass --resume to continue it or "
                "choose another out_dir (--set out_dir=...)."
            )
        (self.out / "config.yaml").write_text(train_config_to_yaml(self.config), encoding="utf-8")
        cfg = self.config
        start = time.monotonic()
        spent_before = float(self.extra.get("seconds", 0.0))
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.task}", unit="step")
        running: dict[str, float] = {}
        count = 0
        try:
            while self.step < cfg.steps:
                terms = self.train_step()
                bar.update(1)
                count += 1
                for k, v in terms.items():
                    running[k] = running.get(k, 0.0) + v
                seconds = spent_before + time.monotonic() - start
                self.extra["seconds"] = seconds
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    row = {k: v / count for k, v in running.items()}
                    self._log(row, seconds)
                    bar.set_postfix(loss=f"{row['total']:.4f}")
                    running, count = {}, 0
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                    self.evaluate()
                if self.step % cfg.checkpoint_every == 0:
                    self.save()
                if cfg.time_limit and seconds >= cfg.time_limit * 60.0:
                    log.warning(
                        "Time limit of %.1f min reached at step %d.", cfg.time_limit, self.step
                    )
                    break
        finally:
            bar.close()
        self.save()
        self.evaluate()
        return self.export()

    def _log(self, row: dict[str, float], seconds: float) -> None:
        record = {"step": self.step, "lr": self.scheduler.get_last_lr()[0], "seconds": seconds}
        record.update(row)
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        path = self.out / "log.csv"
        fields = list(LOG_FIELDS) + sorted(k for k in record if k not in LOG_FIELDS)
        new = not path.exists()
        if not new:
            with open(path, encoding="utf-8") as fh:
                header = fh.readline().strip().split(",")
            fields = header  # keys the header lacks are left out rather than shifting columns
        with open(path, "a", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(record.get(k)) for k in fields})

    # ------------------------------------------------------------------ eval + export

    def held_out(self) -> list[Any]:
        if self._held_out is None:
            photos = self.config.data.source == "photos"
            self._held_out = held_out_frames(
                self.config.eval_samples, self.config.eval_size, photos=photos, rough=photos
            )
        return self._held_out

    def evaluate(self) -> dict[str, float]:
        """Metrics on the held-out frames; PNG previews under ``<out_dir>/previews``."""
        self.model.eval()
        frames = self.held_out()
        previews = self.out / "previews"
        if self.task.kind in ("matte", "refine"):
            acc, preds = evaluate_matte(self.task.predict, frames)
            metrics = {k: v for k, v in acc.mean().items() if k in EVAL_METRICS and v is not None}
            for i, (frame, pred) in enumerate(
                zip(frames[: self.config.previews], preds, strict=False)
            ):
                panels = [frame.image, frame.guidance, pred, frame.alpha]
                write_preview(previews / f"step{self.step:06d}_{i}.png", panels)
        else:
            metrics, preds = evaluate_colour(self.model, frames)
            for i, (frame, pred) in enumerate(
                zip(frames[: self.config.previews], preds, strict=False)
            ):
                panels = [frame.image, frame.alpha, pred, frame.fg]
                write_preview(previews / f"step{self.step:06d}_{i}.png", panels)
        record = {"step": self.step, **{f"eval_{k}": v for k, v in metrics.items()}}
        with open(self.out / "eval.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        log.info("Evaluation at step %d: %s", self.step, metrics)
        self.model.train()
        return metrics

    def export(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the inference weights (``.safetensors``; kind matte, colour or refine)."""
        target = Path(path) if path else self.out / f"{self.config.name}.safetensors"
        meta = {
            "train.step": self.step,
            "train.seed": self.config.seed,
            "train.seconds": round(float(self.extra.get("seconds", 0.0)), 1),
            "train.config": json.dumps(config_to_dict(self.config), sort_keys=True),
        }
        self.model.eval()
        save_checkpoint(
            target, self.task.kind, self.task.export_config(), self.model.state_dict(), meta
        )
        return target


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Run a training to the end and return the exported weights' path."""
    return Trainer(config).fit(resume=resume)


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["cached"]))


def _python_state(text: str) -> tuple[Any, ...]:
    version, internal, gauss = json.loads(text)
    return (version, tuple(internal), gauss)

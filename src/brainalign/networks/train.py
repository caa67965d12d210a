"""Train image→target networks: caption embeddings (the paper's objective) or multi-hot categories.

Losses (applied to the readout at every timestep and averaged over timesteps, as the paper's
code repeats the target for each timestep):

- ``"cosine"`` — cosine distance ``1 − cos(output, target)``: the paper's objective for MPNet
  caption embeddings (Fig. 4a). Default for ``target="mpnet"`` (and any other embedding).
- ``"bce"`` — binary cross-entropy on the logits: default for ``target="multihot"``. The paper's
  loss for its category-trained control is unknown (paper_methods §7.2). A multi-hot vector is a
  set of independent present/absent labels, and BCE is their likelihood, so it is the standard
  multi-label objective; unlike a cosine loss it is defined for images with no category and
  gives every absent category a gradient, which a cosine loss on few-hot targets does weakly.
- ``"sigmoid_cosine"`` — cosine distance between sigmoid outputs and the multi-hot target, the
  loss of the paper's transfer readouts, for those who want the control to mirror it.

Reproducibility and resuming: the order of images in epoch ``e`` is a permutation drawn from
``SeedSequence([random_state, e])`` and the augmentation of step ``s`` from a generator seeded by
``(random_state, s)``, so every batch is a function of the seed and the step alone; the learning
rate is a function of the step (cosine schedule). A checkpoint therefore needs only the weights,
the optimizer state and the step to continue bit-for-bit like an uninterrupted run (on the same
device and thread count).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from brainalign.errors import ConfigError, DataFormatError, InputError
from brainalign.networks.augment import preprocess_images, step_generator
from brainalign.networks.checkpoint import (
    latest_checkpoint,
    read_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from brainalign.networks.data import ImageData
from brainalign.networks.leakage import check_disjoint, comparable
from brainalign.utils import progress
from brainalign.utils.settings import Section, format_errors

# --------------------------------------------------------------------------- losses


def cosine_distance(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``1 − cos(output, target)``."""
    return (1.0 - F.cosine_similarity(output.float(), target.float(), dim=1, eps=1e-8)).mean()


def bce_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over batch and categories."""
    return F.binary_cross_entropy_with_logits(output.float(), target.float())


def sigmoid_cosine_distance(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cosine distance between ``sigmoid(output)`` and the (multi-hot) target."""
    return cosine_distance(torch.sigmoid(output.float()), target)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cosine": cosine_distance,
    "bce": bce_loss,
    "sigmoid_cosine": sigmoid_cosine_distance,
}
# how a loss's raw readout becomes a prediction comparable with the target
PREDICTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "cosine": lambda x: x,
    "bce": torch.sigmoid,
    "sigmoid_cosine": torch.sigmoid,
}
DEFAULT_LOSS = {"multihot": "bce"}

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def default_loss(target: str) -> str:
    """The loss used for ``target`` when none is given: ``"bce"`` for multihot, else ``"cosine"``."""
    return DEFAULT_LOSS.get(target, "cosine")


# --------------------------------------------------------------------------- config / result


class _TrainSettings(Section):
    """The settings that define a training run (shared by :class:`TrainConfig` and ``[train]``).

    Attributes
    ----------
    target : str
        Which target of the data: ``"mpnet"`` (caption embeddings; cosine-distance loss) or
        ``"multihot"`` (categories; binary cross-entropy, see the module docstring for why).
    loss : {"cosine", "bce", "sigmoid_cosine"}
        Default: :func:`default_loss` of ``target``.
    epochs, batch_size : int
        An epoch is ``len(data) // batch_size`` steps (the last partial batch is dropped).
    optimizer : {"adam", "adamw", "sgd"}
    lr, eps, weight_decay : float
        Optimiser settings; ``lr`` is the peak of the cosine schedule.
    schedule : {"cosine", "constant"}
        Learning rate over steps (cosine annealing to 0 over the whole run).
    augment : bool
        The paper's training augmentations (random crop ≥ 1/3 area, flip, brightness,
        saturation, contrast). Validation is never augmented.
    random_state : int
        Seed of the data order and augmentations (initialise the network under your own seed:
        the paper's seeds are different initialisations *and* orders).
    mixed_precision : bool, optional
        bfloat16 autocast; default on for CUDA, off on CPU.
    max_steps : int, optional
        Stop after this many steps in total (an interrupted run; resume later).
    checkpoint_every : int, optional
        Also checkpoint every this many steps (always at each epoch's end and at the stop).
    val_every : int, optional
        Validate every this many steps (default at each epoch's end).
    """

    target: str = "mpnet"
    loss: str | None = None
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 96
    optimizer: str = "adam"
    lr: PositiveFloat = 1e-3
    eps: float = 1e-8
    weight_decay: float = 1e-6
    schedule: Literal["cosine", "constant"] = "cosine"
    augment: bool = True
    random_state: int = 0
    mixed_precision: bool | None = None
    max_steps: NonNegativeInt | None = None
    checkpoint_every: PositiveInt | None = None
    val_every: PositiveInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_loss(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("loss") is None:
            data = {**data, "loss": default_loss(data.get("target", "mpnet"))}
        return data

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        if value not in LOSSES:
            raise ValueError(f"expected one of {sorted(LOSSES)}")
        return value

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        if value not in OPTIMIZERS:
            raise ValueError(f"expected one of {sorted(OPTIMIZERS)}")
        return value


class TrainConfig(_TrainSettings):
    """Everything that defines a training run (saved in every checkpoint).

    ``loss`` defaults to :func:`default_loss` of ``target``. Invalid values raise a
    :class:`~brainalign.errors.ConfigError` naming the key. Immutable: derive a variant with
    ``TrainConfig(**{**cfg.model_dump(), "epochs": 20})``.
    """

    def __init__(self, /, **data: Any) -> None:
        # never nested in another config, so a ConfigError here keeps its key (see Section)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(format_errors(exc, model=type(self))) from None


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    net : torch.nn.Module
        The trained network (in eval mode, on the training device).
    history : list of dict
        One entry per validation: ``step``, ``epoch``, ``train_loss`` (mean since the previous
        entry), ``val_loss``, ``val_cosine`` (mean cosine similarity of the last timestep's
        prediction with the target on the validation images).
    initial : dict
        ``val_loss`` and ``val_cosine`` before training (step 0).
    step : int
        Optimiser steps done.
    checkpoint : Path or None
        The last checkpoint written.
    completed : bool
        False when training stopped at ``max_steps`` before the last epoch ended.
    """

    net: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    initial: dict = field(default_factory=dict)
    step: int = 0
    checkpoint: Path | None = None
    completed: bool = True


# --------------------------------------------------------------------------- helpers


def _device(device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device: CUDA was requested but torch sees no GPU; use device='cpu'")
    return dev


def _autocast(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([int(seed), 7919, int(epoch)])).permutation(
        n
    )


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def predict(
    net: torch.nn.Module,
    data: ImageData,
    *,
    batch_size: int = 128,
    device="cpu",
    timestep: int = -1,
    loss: str = "cosine",
    mixed_precision: bool = False,
) -> np.ndarray:
    """Predictions (readout at ``timestep``, through the loss's link) for every image, ``(n, n_outputs)``."""
    dev = _device(device)
    was_training = net.training
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            idx = np.arange(start, min(start + batch_size, len(data)))
            x = preprocess_images(data.load_images(idx), net.image_size, device=dev)
            with _autocast(dev, mixed_precision):
                y = net(x)[timestep]
            out.append(PREDICTIONS[loss](y.float()).cpu().numpy())
    net.train(was_training)
    return np.concatenate(out).astype(np.float32)


def evaluate(
    net: torch.nn.Module,
    data: ImageData,
    target: str,
    loss: str | None = None,
    *,
    batch_size: int = 128,
    device="cpu",
    mixed_precision: bool = False,
) -> dict:
    """Held-out loss (mean over timesteps) and mean cosine similarity (last timestep)."""
    loss = loss or default_loss(target)
    dev = _device(device)
    y_all = torch.from_numpy(data.target(target))
    was_training = net.training
    net.eval()
    total_loss, total_cos, n = 0.0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            idx = np.arange(start, min(start + batch_size, len(data)))
            x = preprocess_images(data.load_images(idx), net.image_size, device=dev)
            y = y_all[idx].to(dev)
            with _autocast(dev, mixed_precision):
                outs = net(x)
            batch_loss = torch.stack([LOSSES[loss](o, y) for o in outs]).mean()
            cos = F.cosine_similarity(PREDICTIONS[loss](outs[-1].float()), y, dim=1, eps=1e-8)
            total_loss += float(batch_loss) * len(idx)
            total_cos += float(cos.sum())
            n += len(idx)
    net.train(was_training)
    return {"val_loss": total_loss / n, "val_cosine": total_cos / n}


# --------------------------------------------------------------------------- training


def train(
    net: torch.nn.Module,
    data: ImageData,
    config: TrainConfig | str | None = None,
    *,
    val_data: ImageData | None = None,
    device="cpu",
    checkpoint_dir: str | os.PathLike | None = None,
    keep_last: int | None = 2,
    resume: bool = True,
    verbose: bool | None = None,
    evaluated=None,
    allow_overlap: bool = False,
    **settings: Any,
) -> TrainResult:
    """Train ``net`` to map images to ``data.target(target)``, the loss at every timestep.

    ``train(net, data, TrainConfig(target="mpnet", epochs=5))`` and
    ``train(net, data, "mpnet", epochs=5)`` are the same run.

    Parameters
    ----------
    net : BLTNet (or any module with ``image_size`` whose forward returns a list of outputs)
        Trained in place.
    data : ImageData
        Training images with a target named ``target``. Build it with
        :func:`~brainalign.networks.data.from_coco`, ``from_hdf5``, ``from_nsd`` (which leaves out
        NSD's shared test images) or ``from_scenes``.
    config : TrainConfig or str, optional
        The run's settings (target, loss, epochs, batch size, optimiser, learning rate, seed …;
        see :class:`TrainConfig`), or only the target's name (``"mpnet"``, ``"multihot"``).
    val_data : ImageData, optional
        Held-out images for the validation loss and cosine (no augmentation); when its ids
        can be compared with ``data``'s, a validation image that is also trained on stops the
        run.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …
    checkpoint_dir : path, optional
        Where checkpoints go (safetensors + JSON). With ``resume=True`` an existing checkpoint
        there is continued from.
    keep_last : int or None
        Checkpoints to keep.
    resume : bool
        Continue from the newest checkpoint in ``checkpoint_dir`` if there is one.
    verbose : bool, optional
        Progress bar with loss and validation cosine (default: on a terminal).
    evaluated : ImageData, ImageIds or sequence of int, optional
        The images the network will be scored on (e.g. ``leakage.nsd_images(nsd_root)``).
        A training image among them stops the run before any step
        (:func:`~brainalign.networks.leakage.check_disjoint`). Whether given or not, every
        checkpoint records the training images (``training_images``), so the code that scores
        the network checks them against its own images (``compare-models``, the pipeline).
    allow_overlap : bool
        Train even when training images are evaluated; the overlap is recorded in the
        checkpoint (``overlap_with_evaluated``).
    **settings
        :class:`TrainConfig` fields as keywords (``epochs=5, lr=3e-3``) when ``config`` is not a
        TrainConfig.

    Returns
    -------
    TrainResult
    """
    cfg = _train_config(config, settings)
    targets = _training_targets(net, data, val_data, cfg.target)
    images = _checked_training_images(data, val_data, evaluated, allow_overlap)
    dev = _device(device)
    amp = dev.type == "cuda" if cfg.mixed_precision is None else bool(cfg.mixed_precision)
    net.to(dev)
    opt = _optimizer(net, cfg)
    plan = _StepPlan.of(cfg, len(data))
    run_info = {
        "train_config": cfg.model_dump(),
        "data": {"name": data.name, "n": len(data), "fingerprint": data.fingerprint()},
        "steps_per_epoch": plan.steps_per_epoch,
        "total_steps": plan.total,
        **images,
    }
    res = TrainResult(net=net)  # the run's state, updated as it goes
    if checkpoint_dir is not None and resume:
        _resume(res, checkpoint_dir, cfg, run_info, opt, dev)

    def validate() -> dict:
        if val_data is None:
            return {}
        return evaluate(net, val_data, cfg.target, cfg.loss, device=dev, mixed_precision=amp)

    def save_state() -> None:
        if checkpoint_dir is not None:
            res.checkpoint = save_checkpoint(
                checkpoint_dir, net, step=res.step, optimizer=opt, keep_last=keep_last,
                metadata={**run_info, "history": res.history, "initial": res.initial},
            )  # fmt: skip

    if res.step == 0 and not res.initial:
        res.initial = {"step": 0, **validate()}
    net.train()
    bar = progress(total=plan.stop, desc=f"train {cfg.target}", verbose=verbose, unit="step")
    bar.update(res.step)
    running, n_running = 0.0, 0
    while res.step < plan.stop:
        idx = plan.batch(cfg.random_state, res.step, len(data))
        x, y = _batch(net, data, targets, idx, cfg, res.step, dev)
        lr = _lr_at(cfg, res.step, plan.total)
        running += _optimiser_step(net, opt, cfg, x, y, lr, res.step, dev, amp)
        n_running += 1
        res.step += 1
        bar.update(1)
        end_of_epoch = res.step % plan.steps_per_epoch == 0
        if end_of_epoch or res.step == plan.stop or _every(cfg.val_every, res.step):
            entry = {
                "step": res.step,
                "epoch": (res.step - 1) // plan.steps_per_epoch,
                "train_loss": running / n_running,
                **validate(),
            }
            res.history.append(entry)
            bar.set_postfix({k: f"{v:.4f}" for k, v in entry.items() if isinstance(v, float)})
            running, n_running = 0.0, 0
        if end_of_epoch or res.step == plan.stop or _every(cfg.checkpoint_every, res.step):
            save_state()
    bar.close()
    net.eval()
    res.completed = res.step >= plan.total
    return res


def _train_config(config: TrainConfig | str | None, settings: dict) -> TrainConfig:
    """The run's :class:`TrainConfig` from :func:`train`'s ``config`` and keyword settings."""
    if isinstance(config, TrainConfig):
        if settings:
            raise InputError(
                f"train: got a TrainConfig and the keyword settings {sorted(settings)}; give "
                "one or the other (derive a variant with TrainConfig(**{**cfg.model_dump(), ...}))"
            )
        return config
    if config is not None:
        if not isinstance(config, str):
            raise InputError(
                "config: expected a TrainConfig or a target name such as 'mpnet', got "
                f"{type(config).__name__}"
            )
        if "target" in settings:
            raise InputError(f"target: given twice ({config!r} and target={settings['target']!r})")
        settings = {**settings, "target": config}
    return TrainConfig(**settings)


def _training_targets(net, data, val_data, target: str) -> np.ndarray:
    """The training targets, after checking that the data and the network fit each other."""
    if not isinstance(data, ImageData):
        raise InputError(
            f"data: expected a brainalign.networks.ImageData, got {type(data).__name__}"
        )
    targets = data.target(target)
    if hasattr(net, "n_outputs") and targets.shape[1] != net.n_outputs:
        raise InputError(
            f"target {target!r}: has {targets.shape[1]} dimensions but the network's readout has "
            f"{net.n_outputs}; build the network with n_outputs={targets.shape[1]}"
        )
    if val_data is not None:
        val_data.target(target)
    return targets


def _checked_training_images(data: ImageData, val_data, evaluated, allow_overlap: bool) -> dict:
    """The checkpoint's record of the training images, after the leak checks.

    A validation image that is trained on is never accepted; an evaluated image that is
    trained on only with ``allow_overlap`` (and then recorded).
    """
    mine = data.image_ids(f"training images of {data.name or 'the data'}")
    record: dict = {"training_images": mine.to_json()}
    if val_data is not None:
        val = val_data.image_ids(f"validation images of {val_data.name or 'val_data'}")
        if comparable(mine, val):
            check_disjoint(
                mine, val, fix="Validate on images the network does not train on (val_data)."
            )
        record["validation_images"] = {"name": val.name, "n": len(val)}
    if evaluated is not None:
        overlap = check_disjoint(
            mine, evaluated, allow_overlap=allow_overlap,
            fix="Leave them out of the training data (data.without(evaluated)), or pass "
            "allow_overlap=True to train on them anyway (recorded in the checkpoint).",
        )  # fmt: skip
        record["overlap_with_evaluated"] = int(len(overlap))
    return record


def _optimizer(net: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    kwargs = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.optimizer in ("adam", "adamw"):
        kwargs["eps"] = cfg.eps
    else:
        kwargs["momentum"] = 0.9
    return OPTIMIZERS[cfg.optimizer](net.parameters(), **kwargs)


@dataclass(frozen=True)
class _StepPlan:
    """Batch size, steps per epoch, steps of the whole run and the step to stop at."""

    batch_size: int
    steps_per_epoch: int
    total: int
    stop: int

    @classmethod
    def of(cls, cfg: TrainConfig, n_images: int) -> _StepPlan:
        bs = min(cfg.batch_size, n_images)
        steps_per_epoch = max(1, n_images // bs)
        total = steps_per_epoch * cfg.epochs
        stop = total if cfg.max_steps is None else min(total, int(cfg.max_steps))
        return cls(bs, steps_per_epoch, total, stop)

    def batch(self, seed: int, step: int, n_images: int) -> np.ndarray:
        """Sorted image indices of ``step``'s batch (a function of the seed and the step)."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        order = _epoch_order(seed, epoch, n_images)
        return np.sort(order[pos * self.batch_size : (pos + 1) * self.batch_size])


def _batch(
    net, data: ImageData, targets: np.ndarray, idx: np.ndarray, cfg: TrainConfig, step: int, dev
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (augmented with the step's own generator) and targets of one batch."""
    gen = step_generator(cfg.random_state, 1, step)
    x = preprocess_images(
        data.load_images(idx), net.image_size, augment=cfg.augment, generator=gen, device=dev
    )
    return x, torch.from_numpy(targets[idx]).to(dev)


def _optimiser_step(net, opt, cfg: TrainConfig, x, y, lr: float, step: int, dev, amp) -> float:
    """One optimiser step at learning rate ``lr``; returns the batch loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    with _autocast(dev, amp):
        outs = net(x)
    loss_fn = LOSSES[cfg.loss]
    batch_loss = torch.stack([loss_fn(o, y) for o in outs]).mean()
    if not torch.isfinite(batch_loss):
        raise DataFormatError(
            f"training diverged at step {step} (loss {float(batch_loss)}); lower lr (now {cfg.lr})"
        )
    batch_loss.backward()
    opt.step()
    return float(batch_loss.detach())


def _every(interval: int | None, step: int) -> bool:
    return bool(interval) and step % interval == 0


#: settings a checkpoint must share with the call that resumes it
_RESUME_KEYS = ("target", "loss", "batch_size", "random_state", "epochs", "lr", "optimizer")


def _resume(res: TrainResult, checkpoint_dir, cfg: TrainConfig, run_info: dict, opt, dev) -> None:
    """Continue ``res`` from the newest checkpoint in ``checkpoint_dir``, if there is one."""
    found = latest_checkpoint(checkpoint_dir)
    if found is None:
        return
    info, weights, opt_tensors = read_checkpoint(found, device="cpu")
    saved = info.get("train_config", {})
    for key in _RESUME_KEYS:
        if saved.get(key) != getattr(cfg, key):
            raise ConfigError(
                f"{found}: was trained with {key}={saved.get(key)!r}, this call has "
                f"{getattr(cfg, key)!r}; use another checkpoint_dir or resume=False"
            )
    if info.get("data", {}).get("fingerprint") != run_info["data"]["fingerprint"]:
        raise DataFormatError(
            f"{found}: was trained on different data ({info.get('data', {}).get('name')}); "
            "use another checkpoint_dir or resume=False"
        )
    res.net.load_state_dict(weights)
    res.net.to(dev)
    restore_optimizer(opt, info, opt_tensors)
    res.step, res.history = info["step"], info.get("history", [])
    res.initial, res.checkpoint = info.get("initial", {}), found


__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "TrainConfig",
    "TrainResult",
    "bce_loss",
    "cosine_distance",
    "default_loss",
    "evaluate",
    "predict",
    "sigmoid_cosine_distance",
    "train",
]

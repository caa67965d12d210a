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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from brainalign.errors import ConfigError, DataFormatError, InputError
from brainalign.networks.augment import preprocess_images, step_generator
from brainalign.networks.checkpoint import (
    latest_checkpoint,
    read_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from brainalign.networks.data import ImageData
from brainalign.utils import progress

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


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    target: str = "mpnet"
    loss: str | None = None
    epochs: int = 10
    batch_size: int = 96
    optimizer: str = "adam"
    lr: float = 1e-3
    eps: float = 1e-8
    weight_decay: float = 1e-6
    schedule: str = "cosine"
    augment: bool = True
    random_state: int = 0
    mixed_precision: bool | None = None
    max_steps: int | None = None
    checkpoint_every: int | None = None
    val_every: int | None = None

    def __post_init__(self):
        if self.loss is None:
            self.loss = default_loss(self.target)
        if self.loss not in LOSSES:
            raise ConfigError(f"loss: unknown {self.loss!r}; choose one of {sorted(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer: unknown {self.optimizer!r}; choose one of {sorted(OPTIMIZERS)}"
            )
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule: expected 'cosine' or 'constant', got {self.schedule!r}")
        for key in ("epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ConfigError(f"lr: expected a positive learning rate, got {self.lr}")


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
    target: str = "mpnet",
    *,
    val_data: ImageData | None = None,
    loss: str | None = None,
    epochs: int = 10,
    batch_size: int = 96,
    optimizer: str = "adam",
    lr: float = 1e-3,
    eps: float = 1e-8,
    weight_decay: float = 1e-6,
    schedule: str = "cosine",
    augment: bool = True,
    random_state: int = 0,
    device="cpu",
    mixed_precision: bool | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep_last: int | None = 2,
    resume: bool = True,
    max_steps: int | None = None,
    val_every: int | None = None,
    verbose: bool | None = None,
) -> TrainResult:
    """Train ``net`` to map images to ``data.target(target)``, the loss at every timestep.

    Parameters
    ----------
    net : BLTNet (or any module with ``image_size`` whose forward returns a list of outputs)
        Trained in place.
    data : ImageData
        Training images with a target named ``target``. Build it with
        :func:`~brainalign.networks.data.from_coco`, ``from_hdf5``, ``from_nsd`` (which leaves out
        NSD's shared test images) or ``from_scenes``.
    target : str
        Which target: ``"mpnet"`` (caption embeddings; cosine-distance loss) or ``"multihot"``
        (categories; binary cross-entropy, see the module docstring for why).
    val_data : ImageData, optional
        Held-out images for the validation loss and cosine (no augmentation).
    loss : {"cosine", "bce", "sigmoid_cosine"}, optional
        Overrides the default for ``target``.
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
        Seed of the data order and augmentations (initialise ``net`` under your own seed: the
        paper's seeds are different initialisations *and* orders).
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …
    mixed_precision : bool, optional
        bfloat16 autocast; default on for CUDA, off on CPU.
    checkpoint_dir : path, optional
        Where checkpoints go (safetensors + JSON). With ``resume=True`` an existing checkpoint
        there is continued from.
    checkpoint_every : int, optional
        Also checkpoint every this many steps (always at each epoch's end and at the stop).
    keep_last : int or None
        Checkpoints to keep.
    resume : bool
        Continue from the newest checkpoint in ``checkpoint_dir`` if there is one.
    max_steps : int, optional
        Stop after this many steps in total (an interrupted run; resume later).
    val_every : int, optional
        Validate every this many steps (default at each epoch's end).
    verbose : bool, optional
        Progress bar with loss and validation cosine (default: on a terminal).

    Returns
    -------
    TrainResult
    """
    cfg = TrainConfig(
        target=target, loss=loss, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
        lr=lr, eps=eps, weight_decay=weight_decay, schedule=schedule, augment=augment,
        random_state=int(random_state), mixed_precision=mixed_precision, max_steps=max_steps,
        checkpoint_every=checkpoint_every, val_every=val_every,
    )  # fmt: skip
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
    dev = _device(device)
    amp = dev.type == "cuda" if cfg.mixed_precision is None else bool(cfg.mixed_precision)
    net.to(dev)
    opt_kwargs = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.optimizer in ("adam", "adamw"):
        opt_kwargs["eps"] = cfg.eps
    else:
        opt_kwargs["momentum"] = 0.9
    opt = OPTIMIZERS[cfg.optimizer](net.parameters(), **opt_kwargs)

    bs = min(cfg.batch_size, len(data))
    steps_per_epoch = max(1, len(data) // bs)
    total = steps_per_epoch * cfg.epochs
    stop = total if cfg.max_steps is None else min(total, int(cfg.max_steps))
    loss_fn = LOSSES[cfg.loss]
    run_info = {
        "train_config": asdict(cfg),
        "data": {"name": data.name, "n": len(data), "fingerprint": data.fingerprint()},
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total,
    }

    step, history, initial, ckpt = 0, [], {}, None
    if checkpoint_dir is not None and resume:
        found = latest_checkpoint(checkpoint_dir)
        if found is not None:
            info, weights, opt_tensors = read_checkpoint(found, device="cpu")
            saved = info.get("train_config", {})
            for key in (
                "target",
                "loss",
                "batch_size",
                "random_state",
                "epochs",
                "lr",
                "optimizer",
            ):
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
            net.load_state_dict(weights)
            net.to(dev)
            restore_optimizer(opt, info, opt_tensors)
            step, history, initial = info["step"], info.get("history", []), info.get("initial", {})
            ckpt = found

    def checkpoint():
        if checkpoint_dir is None:
            return None
        return save_checkpoint(
            checkpoint_dir, net, step=step, optimizer=opt, keep_last=keep_last,
            metadata={**run_info, "history": history, "initial": initial},
        )  # fmt: skip

    def validate():
        if val_data is None:
            return {}
        return evaluate(net, val_data, cfg.target, cfg.loss, device=dev, mixed_precision=amp)

    if step == 0 and not initial:
        initial = {"step": 0, **validate()}
    net.train()
    bar = progress(total=stop, desc=f"train {cfg.target}", verbose=verbose, unit="step")
    bar.update(step)
    running, n_running = 0.0, 0
    while step < stop:
        epoch, pos = divmod(step, steps_per_epoch)
        order = _epoch_order(cfg.random_state, epoch, len(data))
        idx = np.sort(order[pos * bs : (pos + 1) * bs])
        images = data.load_images(idx)
        gen = step_generator(cfg.random_state, 1, step)
        x = preprocess_images(
            images, net.image_size, augment=cfg.augment, generator=gen, device=dev
        )
        y = torch.from_numpy(targets[idx]).to(dev)
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step, total)
        opt.zero_grad(set_to_none=True)
        with _autocast(dev, amp):
            outs = net(x)
        batch_loss = torch.stack([loss_fn(o, y) for o in outs]).mean()
        if not torch.isfinite(batch_loss):
            raise DataFormatError(
                f"training diverged at step {step} (loss {float(batch_loss)}); lower lr (now {cfg.lr})"
            )
        batch_loss.backward()
        opt.step()
        step += 1
        running += float(batch_loss.detach())
        n_running += 1
        bar.update(1)
        end_of_epoch = step % steps_per_epoch == 0
        if end_of_epoch or step == stop or (cfg.val_every and step % cfg.val_every == 0):
            entry = {
                "step": step,
                "epoch": (step - 1) // steps_per_epoch,
                "train_loss": running / n_running,
                **validate(),
            }
            history.append(entry)
            bar.set_postfix({k: f"{v:.4f}" for k, v in entry.items() if isinstance(v, float)})
            running, n_running = 0.0, 0
        if (
            end_of_epoch
            or step == stop
            or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)
        ):
            ckpt = checkpoint() or ckpt
    bar.close()
    net.eval()
    return TrainResult(
        net=net,
        history=history,
        initial=initial,
        step=step,
        checkpoint=ckpt,
        completed=step >= total,
    )


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

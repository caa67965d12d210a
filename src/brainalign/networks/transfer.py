"""Transfer readouts (paper Fig. 4b): a linear readout from a frozen network to a target.

The authors' ``transfer_readout.py`` (paper_methods §7.3): pre-readout activations of each frozen
network (last layer, last timestep) on NSD images; the last 2,000 images held out; a linear layer
(+ sigmoid for multi-hot targets) trained with a cosine loss, Adam lr 0.05, ε 0.1, batch 96,
200 epochs, cosine annealing. Score: mean cosine similarity on the held-out images. Floor: the
cosine similarity between the mean training target and each held-out target.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from brainalign.errors import InputError
from brainalign.features.vision import activations
from brainalign.networks.data import ImageData
from brainalign.utils import check_2d


def mean_target_floor(Y_train: np.ndarray, Y_test: np.ndarray) -> float:
    """Mean cosine similarity between the mean training target and each held-out target."""
    Y_train = check_2d(Y_train, "Y_train", dtype=np.float64)
    Y_test = check_2d(Y_test, "Y_test", dtype=np.float64)
    m = Y_train.mean(0)
    denom = np.linalg.norm(Y_test, axis=1) * np.linalg.norm(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (Y_test @ m) / denom
    return float(np.nanmean(cos))


def linear_readout(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_test: np.ndarray,
    Y_test: np.ndarray,
    *,
    sigmoid: bool = False,
    loss: str = "cosine",
    bias_init: str = "zero",
    epochs: int = 200,
    batch_size: int = 96,
    lr: float = 0.05,
    eps: float = 0.1,
    random_state: int = 0,
    device="cpu",
) -> dict:
    """Fit a linear readout on ``(X_train, Y_train)``; score it on the test set after every epoch.

    Parameters
    ----------
    X_train, X_test : (n, d) float arrays
        Frozen features (e.g. a network's pooled last layer).
    Y_train, Y_test : (n, k) float arrays
        Targets (embeddings, or multi-hot with ``sigmoid=True``).
    sigmoid : bool
        Pass the readout through a sigmoid (the paper's choice for multi-hot targets).
    loss : {"cosine", "bce"}
        What the readout minimises: 1 − cosine similarity with the target (the paper's
        transfer readout), or the binary cross-entropy of its sigmoid with 0/1 targets (how the
        paper trains category networks; implies ``sigmoid``).
    bias_init : {"zero", "mean"}
        The readout at the start: random weights and a zero bias (the paper's transfer
        readout), or zero weights and the constant prediction closest to the training targets
        as bias (their mean; for ``"bce"`` the logit of each category's frequency), so that
        training starts from the floor and learns what the features add to it.
    epochs, batch_size, lr, eps : optimisation (the paper's: 200, 96, 0.05, 0.1; cosine annealing)
    random_state : int
        Seed of the initialisation and batch order.

    Returns
    -------
    dict with ``cosine`` (mean held-out cosine similarity), ``floor`` (mean-target floor),
    ``per_image`` ((n_test,) cosines), ``weight`` / ``bias`` of the readout (on the raw
    features: ``X @ weight.T + bias``, before the sigmoid), ``initial`` (held-out ``val_loss`` and
    ``val_cosine`` before training) and ``history`` (one dict per epoch: ``epoch``, from 0,
    ``step``, ``train_loss``, the mean over the epoch's batches, ``val_loss`` and
    ``val_cosine``).
    """
    X_train = check_2d(X_train, "X_train", dtype=np.float32, allow_nan=False)
    X_test = check_2d(X_test, "X_test", dtype=np.float32, allow_nan=False)
    Y_train = check_2d(Y_train, "Y_train", dtype=np.float32, allow_nan=False)
    Y_test = check_2d(Y_test, "Y_test", dtype=np.float32, allow_nan=False)
    if len(X_train) != len(Y_train) or len(X_test) != len(Y_test):
        raise InputError("X/Y: features and targets must have the same number of rows")
    if X_train.shape[1] != X_test.shape[1] or Y_train.shape[1] != Y_test.shape[1]:
        raise InputError("train/test: feature and target widths must match between the splits")
    if loss not in ("cosine", "bce"):
        raise InputError(f"loss: expected 'cosine' or 'bce', got {loss!r}")
    if bias_init not in ("zero", "mean"):
        raise InputError(f"bias_init: expected 'zero' or 'mean', got {bias_init!r}")
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(int(random_state))
    # standardising the frozen features makes the paper's large learning rate stable; a feature
    # (nearly) constant on the training images is only centred, since dividing by its tiny
    # spread would blow up its values on other images (ReLU channels dead on the training set)
    mu, sd = X_train.mean(0), X_train.std(0)
    sd = np.where(sd > 1e-6 * max(float(sd.max(initial=0.0)), 1e-30), sd, 1.0).astype(np.float32)
    xt = torch.from_numpy((X_train - mu) / sd).to(dev)
    yt = torch.from_numpy(Y_train).to(dev)
    xv = torch.from_numpy((X_test - mu) / sd).to(dev)
    yv = torch.from_numpy(Y_test).to(dev)
    layer = torch.nn.Linear(X_train.shape[1], Y_train.shape[1])
    with torch.no_grad():
        bound = 1 / math.sqrt(X_train.shape[1])
        layer.weight.uniform_(-bound, bound, generator=gen)
        layer.bias.zero_()
        if bias_init == "mean":
            layer.weight.zero_()
            mean = torch.from_numpy(Y_train.mean(0))
            if loss == "bce":
                mean = torch.logit(mean.clamp(1e-4, 1 - 1e-4))
            layer.bias.copy_(mean)
    layer.to(dev)
    opt = torch.optim.Adam(layer.parameters(), lr=lr, eps=eps)
    n = len(xt)
    bs = min(batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    link = torch.sigmoid if (sigmoid or loss == "bce") else (lambda z: z)

    def loss_of(z, y):
        if loss == "bce":
            return F.binary_cross_entropy_with_logits(z, y)
        return (1 - F.cosine_similarity(link(z), y, dim=1, eps=1e-8)).mean()

    def held_out():
        with torch.no_grad():
            z = layer(xv)
            cos = F.cosine_similarity(link(z), yv, dim=1, eps=1e-8)
            return float(loss_of(z, yv)), cos.cpu().numpy()

    val_loss, cos = held_out()
    initial = {"val_loss": val_loss, "val_cosine": float(cos.mean())}
    history = []
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(dev)
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * bs : (s + 1) * bs]
            batch_loss = loss_of(layer(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            sched.step()
            losses.append(float(batch_loss.detach()))
        val_loss, cos = held_out()
        history.append(
            {"epoch": epoch, "step": (epoch + 1) * steps_per_epoch,
             "train_loss": float(np.mean(losses)), "val_loss": val_loss,
             "val_cosine": float(cos.mean())}
        )  # fmt: skip
    return {
        "cosine": float(cos.mean()),
        "floor": mean_target_floor(Y_train, Y_test),
        "per_image": cos.astype(np.float32),
        "initial": initial,
        "history": history,
        "weight": layer.weight.detach().cpu().numpy() / sd[None, :],
        "bias": (
            layer.bias.detach().cpu().numpy() - (layer.weight.detach().cpu().numpy() / sd) @ mu
        ),
    }


def transfer_readout(
    net: torch.nn.Module,
    data: ImageData,
    target: str,
    *,
    layer: str = "last",
    n_test: int | float = 2000,
    sigmoid: bool | None = None,
    epochs: int = 200,
    batch_size: int = 96,
    lr: float = 0.05,
    eps: float = 0.1,
    random_state: int = 0,
    device="cpu",
    verbose: bool | None = None,
) -> dict:
    """Frozen ``net`` → linear readout to ``data.target(target)``; held-out cosine and floor.

    Parameters
    ----------
    net : BLTNet
    data : ImageData
        Images with the target; the last ``n_test`` images (a count or fraction) are held out,
        as in the paper.
    target : str
        e.g. ``"mpnet"`` or ``"multihot"``.
    layer : str
        Activation to read (default the last layer at the last timestep).
    sigmoid : bool, optional
        Default True for ``"multihot"``.

    Returns
    -------
    dict : see :func:`linear_readout` (plus ``layer``, ``n_train``, ``n_test``).
    """
    Y = data.target(target)
    n = len(data)
    k = int(round(n_test * n)) if isinstance(n_test, float) else int(n_test)
    if not 0 < k < n:
        raise InputError(f"n_test: expected between 1 and {n - 1} held-out images, got {k}")
    acts = activations(net, data, layers=layer, device=device, verbose=verbose)
    X = next(iter(acts.values()))
    name = next(iter(acts))
    res = linear_readout(
        X[: n - k], Y[: n - k], X[n - k :], Y[n - k :],
        sigmoid=(target == "multihot") if sigmoid is None else sigmoid,
        epochs=epochs, batch_size=batch_size, lr=lr, eps=eps, random_state=random_state, device=device,
    )  # fmt: skip
    res.update({"layer": name, "n_train": n - k, "n_test": k})
    return res


__all__ = ["linear_readout", "mean_target_floor", "transfer_readout"]

"""Session fixtures of the networks tests: scenes, caption targets, trained tiny networks.

Sizes are chosen so the whole module stays within a few minutes on 2 loaded cores: 64 px
images, width 1/8 of the paper's half-channel vNet, 2 timesteps, 50 optimiser steps per net
(5 epochs; measured held-out cosine distance 0.3863 against 0.3873 for the shuffled-target
control, 0.975 untrained; 10 epochs gave 0.383 against 0.387 at twice the time).
Caption targets use the packaged all-MiniLM-L6-v2 encoder (the same objective as MPNet: mean
sentence embedding of the captions) because embedding ~1,500 captions with MPNet on a loaded
CPU alone would exceed the budget; the MPNet path itself is tested on a few scenes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainalign.networks import BLTNet, ImageData, train

N_SCENES = 300
N_VAL = 60
IMAGE_SIZE = 64
NET_KW = {"width": 1 / 8, "timesteps": 2, "image_size": IMAGE_SIZE}
TRAIN_KW = {"epochs": 5, "batch_size": 24, "lr": 3e-3, "random_state": 0}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on shared, loaded cores OpenMP spin-waiting costs ~10× the CPU time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_net(n_outputs: int, seed: int = 0) -> BLTNet:
    torch.manual_seed(seed)
    return BLTNet(n_outputs, **NET_KW)


@pytest.fixture(scope="session")
def make_net():
    """``make_net(n_outputs, seed=0)`` → a tiny BLTNet (64 px, 2 timesteps) seeded for its init."""
    return tiny_net


@pytest.fixture(scope="session")
def scenes():
    from brainalign.datasets.scenes import make_scenes

    # a seed far from the virtual NSD's, so training scenes are not its stimuli
    return make_scenes(N_SCENES, random_state=1234)


@pytest.fixture(scope="session")
def minilm():
    from brainalign.features import SentenceEncoder

    return SentenceEncoder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def scene_data(scenes, minilm) -> tuple[ImageData, ImageData]:
    """(train, val) ImageData with ``mpnet`` (MiniLM caption embeddings) and ``multihot`` targets."""
    from brainalign.networks.data import caption_targets

    images = scenes.render(np.arange(N_SCENES), IMAGE_SIZE)
    targets = {
        "mpnet": caption_targets(scenes.captions, minilm),
        "multihot": np.asarray(scenes.categories, dtype=np.float32),
    }
    data = ImageData(images, targets, name="scenes")
    return data.subset(np.arange(N_SCENES - N_VAL)), data.subset(
        np.arange(N_SCENES - N_VAL, N_SCENES)
    )


def _train_three(scene_data, folder) -> dict:
    """The three nets, checkpointed in ``folder``: a finished checkpoint there is resumed (same
    weights, history and initial scores), not trained again."""
    train_data, val_data = scene_data
    perm = np.random.default_rng(0).permutation(len(train_data))
    shuffled = ImageData(
        train_data.load_images(np.arange(len(train_data))),
        {"mpnet": train_data.target("mpnet")[perm]},
        name="shuffled",
    )
    runs = {"mpnet": (train_data, "mpnet"), "multihot": (train_data, "multihot"),
            "shuffled": (shuffled, "mpnet")}  # fmt: skip
    return {
        name: train(
            tiny_net(data.target(target).shape[1]), data, target, val_data=val_data,
            checkpoint_dir=folder / name, **TRAIN_KW,
        )  # fmt: skip
        for name, (data, target) in runs.items()
    }


@pytest.fixture(scope="session")
def trained(scene_data, shared_build):
    """Three nets of the same size and budget: caption-embedding, multi-hot, shuffled-embedding.

    Trained once per test run (the suite's most expensive fixture): under pytest-xdist the first
    worker that needs them trains them, the others resume its finished checkpoints.
    """

    def build(folder):
        _train_three(scene_data, folder)
        return folder

    return _train_three(scene_data, shared_build("trained_nets", build))

"""Session fixtures of the networks tests: scenes, caption targets, trained tiny networks.

Sizes are chosen so the whole module stays within a few minutes on 2 loaded cores: 64 px
images, width 1/8 of the paper's half-channel vNet, 2 timesteps, 150 optimiser steps per net.
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
TRAIN_KW = {"epochs": 15, "batch_size": 24, "lr": 3e-3, "random_state": 0}


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


@pytest.fixture(scope="session")
def trained(scene_data):
    """Three nets of the same size and budget: caption-embedding, multi-hot, shuffled-embedding."""
    train_data, val_data = scene_data
    out = {}
    d = train_data.target("mpnet").shape[1]
    out["mpnet"] = train(tiny_net(d), train_data, "mpnet", val_data=val_data, **TRAIN_KW)
    k = train_data.target("multihot").shape[1]
    out["multihot"] = train(tiny_net(k), train_data, "multihot", val_data=val_data, **TRAIN_KW)
    perm = np.random.default_rng(0).permutation(len(train_data))
    shuffled = ImageData(
        train_data.load_images(np.arange(len(train_data))),
        {"mpnet": train_data.target("mpnet")[perm]},
        name="shuffled",
    )
    out["shuffled"] = train(tiny_net(d), shuffled, "mpnet", val_data=val_data, **TRAIN_KW)
    return out

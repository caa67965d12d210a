"""Session fixtures of the networks tests: scenes, caption targets, trained tiny networks.

Sizes are chosen so the whole module stays within a few minutes on 2 loaded cores: 64 px
images and width 1/8 of the paper's half-channel vNet with 2 timesteps for the nets tests build
(``make_net``). Of the three trained nets (``trained``, 50 optimiser steps each: 5 epochs), the
caption-embedding net and its shuffled-target control are smaller still, 4 layers at 32 px
(measured held-out cosine distance 0.4327 against 0.4348 for the control: a wider margin than
the 10-layer 64 px net's 0.3863 against 0.3873, at about 2/5 of its training time), and the
category net has 6 layers at 48 px.
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
#: the three trained nets: fewer layers, so fewer poolings and smaller images
TRAINED_IMAGE_SIZE = 32
TRAINED_NET_KW = {"width": 1 / 8, "timesteps": 2, "image_size": TRAINED_IMAGE_SIZE, "n_layers": 4}
#: the category net: 6 layers at 48 px (held-out BCE 0.4292 against the base rate's 0.4286, as
#: the 10-layer 64-px net's 0.4312, in 2/5 of its training time; at 4 layers and 32 px it stayed
#: at 0.457)
CATEGORY_IMAGE_SIZE = 48
CATEGORY_NET_KW = {"width": 1 / 8, "timesteps": 2, "image_size": CATEGORY_IMAGE_SIZE, "n_layers": 6}
TRAIN_KW = {"epochs": 5, "batch_size": 24, "lr": 3e-3, "random_state": 0}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on shared, loaded cores OpenMP spin-waiting costs ~10× the CPU time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_net(n_outputs: int, seed: int = 0, **kw) -> BLTNet:
    """A BLTNet of ``NET_KW`` (``kw`` overrides it), initialised from ``seed``."""
    torch.manual_seed(seed)
    return BLTNet(n_outputs, **{**NET_KW, **kw})


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
def scene_targets(scenes, minilm) -> dict[str, np.ndarray]:
    """``mpnet`` (MiniLM caption embeddings) and ``multihot`` targets of the scenes."""
    from brainalign.networks.data import caption_targets

    return {
        "mpnet": caption_targets(scenes.captions, minilm),
        "multihot": np.asarray(scenes.categories, dtype=np.float32),
    }


def _split(scenes, targets, image_size) -> tuple[ImageData, ImageData]:
    data = ImageData(scenes.render(np.arange(N_SCENES), image_size), targets, name="scenes")
    return data.subset(np.arange(N_SCENES - N_VAL)), data.subset(
        np.arange(N_SCENES - N_VAL, N_SCENES)
    )


@pytest.fixture(scope="session")
def scene_data(scenes, scene_targets) -> tuple[ImageData, ImageData]:
    """(train, val) ImageData at 64 px with ``mpnet`` and ``multihot`` targets."""
    return _split(scenes, scene_targets, IMAGE_SIZE)


@pytest.fixture(scope="session")
def trained_data(scenes, scene_targets) -> tuple[ImageData, ImageData]:
    """The same scenes and split at the trained caption-embedding nets' 32 px."""
    return _split(scenes, scene_targets, TRAINED_IMAGE_SIZE)


@pytest.fixture(scope="session")
def category_data(scenes, scene_targets) -> tuple[ImageData, ImageData]:
    """The same scenes and split at the trained category net's 48 px."""
    return _split(scenes, scene_targets, CATEGORY_IMAGE_SIZE)


def _train_three(trained_data, category_data, folder) -> dict:
    """The three nets, checkpointed in ``folder``: a finished checkpoint there is resumed (same
    weights, history and initial scores), not trained again.

    The caption-embedding net and its shuffled-target control are ``TRAINED_NET_KW`` nets on
    ``trained_data``; the category net is a ``CATEGORY_NET_KW`` net on ``category_data``.
    """
    train_data, val_data = trained_data
    perm = np.random.default_rng(0).permutation(len(train_data))
    shuffled = ImageData(
        train_data.load_images(np.arange(len(train_data))),
        {"mpnet": train_data.target("mpnet")[perm]},
        name="shuffled",
    )
    runs = {
        "mpnet": (train_data, val_data, "mpnet", TRAINED_NET_KW),
        "multihot": (*category_data, "multihot", CATEGORY_NET_KW),
        "shuffled": (shuffled, val_data, "mpnet", TRAINED_NET_KW),
    }
    return {
        name: train(
            tiny_net(data.target(target).shape[1], **kw),
            data,
            target,
            val_data=val,
            checkpoint_dir=folder / name,
            **TRAIN_KW,
        )  # fmt: skip
        for name, (data, val, target, kw) in runs.items()
    }


@pytest.fixture(scope="session")
def trained(trained_data, category_data, shared_build):
    """Three nets of the same budget: caption-embedding, multi-hot, shuffled-embedding.

    Trained once per test run (the suite's most expensive fixture): under pytest-xdist the first
    worker that needs them trains them, the others resume its finished checkpoints.
    """

    def build(folder):
        _train_three(trained_data, category_data, folder)
        return folder

    return _train_three(trained_data, category_data, shared_build("trained_nets", build))

"""Procedural scenes: determinism, captions, minimal pairs, rendering, planted representations."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict
from threadpoolctl import threadpool_limits

from brainalign.datasets._scene_render import object_radius
from brainalign.datasets._scene_vocab import COLOURS
from brainalign.datasets.scenes import (
    CATEGORIES,
    REPRESENTATION_NAMES,
    SceneSet,
    make_scenes,
    nouns_for,
    render_scene,
)
from brainalign.errors import BrainAlignError, InputError

N = 400


@pytest.fixture(scope="session")
def scene_set() -> SceneSet:
    return make_scenes(N, random_state=7, minimal_pair_fraction=0.2)


def _words(text: str) -> Counter:
    return Counter(re.findall(r"[a-z\-]+", text.lower()))


def _pairs(s: SceneSet):
    return [
        (i, sc["minimal_pair_of"])
        for i, sc in enumerate(s.scenes)
        if sc["minimal_pair_of"] is not None and i < sc["minimal_pair_of"]
    ]


def test_same_seed_same_everything():
    a = make_scenes(25, random_state=3)
    b = make_scenes(25, random_state=3)
    assert a.scenes == b.scenes
    assert a.captions == b.captions
    np.testing.assert_array_equal(a.categories, b.categories)
    for name in REPRESENTATION_NAMES:
        np.testing.assert_array_equal(a.representations[name], b.representations[name])
    assert a.render(range(25), size=120).tobytes() == b.render(range(25), size=120).tobytes()


def test_different_seed_differs():
    a = make_scenes(25, random_state=3)
    c = make_scenes(25, random_state=4)
    assert a.captions != c.captions
    assert not np.array_equal(a.render([0], size=64), c.render([0], size=64))


def test_shapes_dtypes_and_standardised(scene_set):
    assert len(scene_set) == N
    assert scene_set.categories.dtype == np.uint8
    assert scene_set.categories.shape == (N, len(CATEGORIES))
    assert scene_set.category_names == list(CATEGORIES)
    assert set(scene_set.representations) == set(REPRESENTATION_NAMES)
    for name, rep in scene_set.representations.items():
        assert rep.dtype == np.float32, name
        assert rep.shape[0] == N and 20 <= rep.shape[1] <= 200, (name, rep.shape)
        assert np.isfinite(rep).all()
        std = rep.std(axis=0)
        live = std > 0
        assert live.mean() > 0.8, name
        np.testing.assert_allclose(rep.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(std[live], 1, atol=1e-4)
    # Every scene has 2-4 objects; multi-hot matches the objects.
    for i, scene in enumerate(scene_set.scenes[:50]):
        cats = {o["category"] for o in scene["objects"]}
        assert 2 <= len(scene["objects"]) <= 4
        assert {CATEGORIES[k] for k in np.flatnonzero(scene_set.categories[i])} == cats


def test_scenes_are_json_serialisable(scene_set):
    assert json.loads(json.dumps(scene_set.scenes)) == scene_set.scenes


def test_captions_distinct_and_mention_event_objects(scene_set):
    for scene, caps in zip(scene_set.scenes, scene_set.captions, strict=True):
        assert len(caps) == 5 and len(set(caps)) == 5
        ev = scene["events"][0]
        for cap in caps:
            words = set(_words(cap))
            for role in ("agent", "patient"):
                obj = scene["objects"][ev[role]]
                assert words & set(nouns_for(obj)), (cap, obj)


def test_captions_vary_like_coco(scene_set):
    caps = [c for cs in scene_set.captions for c in cs]
    assert sum(" by " in c for c in caps) > 0.05 * len(caps)  # passive voice
    assert sum(c.startswith("There is") for c in caps) > 0.05 * len(caps)
    assert sum(not c.endswith(".") for c in caps) > 0.05 * len(caps)  # fragments
    # Synonyms: some dogs are called puppies.
    assert any("puppy" in c or "pup " in c for c in caps)
    assert any(re.search(r"\bdog\b", c) for c in caps)


def test_n_captions_argument():
    s = make_scenes(5, random_state=1, n_captions=9)
    assert all(len(c) == 9 and len(set(c)) == 9 for c in s.captions)


def test_minimal_pairs(scene_set):
    pairs = _pairs(scene_set)
    assert len(pairs) == int(0.2 * N) // 2
    marked = [sc["minimal_pair_of"] for sc in scene_set.scenes if sc["minimal_pair_of"] is not None]
    assert len(marked) == 2 * len(pairs)
    rep = scene_set.representations
    for i, j in pairs:
        a, b = scene_set.scenes[i], scene_set.scenes[j]
        assert b["minimal_pair_of"] == i
        ea, eb = a["events"][0], b["events"][0]
        assert (ea["agent"], ea["patient"]) == (eb["patient"], eb["agent"])
        assert ea["action"] == eb["action"]
        # Same words, different meaning.
        for ca, cb in zip(scene_set.captions[i], scene_set.captions[j], strict=True):
            assert _words(ca) == _words(cb)
            assert ca != cb
        assert not np.allclose(rep["events"][i], rep["events"][j])
        np.testing.assert_array_equal(rep["objects"][i], rep["objects"][j])
        np.testing.assert_array_equal(rep["layout"][i], rep["layout"][j])
        # The picture differs (arrow direction, facing).
        assert not np.array_equal(scene_set.render([i], 96), scene_set.render([j], 96))


def test_no_minimal_pairs_when_fraction_zero():
    s = make_scenes(30, random_state=0, minimal_pair_fraction=0.0)
    assert all(sc["minimal_pair_of"] is None for sc in s.scenes)


def _cv_r2(X, Y, alphas=np.logspace(-2, 4, 7)):
    """5-fold cross-validated ridge R² of Y from X, at the best alpha (optimistic on purpose)."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    sse = np.zeros(len(alphas))
    # One BLAS thread: small SVDs on shared, loaded cores are far faster single-threaded.
    with threadpool_limits(1):
        for train, test in KFold(5, shuffle=True, random_state=0).split(X):
            mx, my = X[train].mean(0), Y[train].mean(0)
            U, s, Vt = np.linalg.svd(X[train] - mx, full_matrices=False)
            UtY = U.T @ (Y[train] - my)
            for k, a in enumerate(alphas):
                W = Vt.T @ ((s / (s**2 + a))[:, None] * UtY)
                sse[k] += (((X[test] - mx) @ W + my - Y[test]) ** 2).sum()
    return 1 - sse.min() / ((Y - Y.mean(0)) ** 2).sum()


def test_cv_r2_helper_matches_sklearn(rng):
    X = rng.standard_normal((120, 15))
    Y = X @ rng.standard_normal((15, 4)) + rng.standard_normal((120, 4))
    pred = cross_val_predict(Ridge(alpha=10.0), X, Y, cv=KFold(5, shuffle=True, random_state=0))
    ref = 1 - ((Y - pred) ** 2).sum() / ((Y - Y.mean(0)) ** 2).sum()
    assert abs(_cv_r2(X, Y, alphas=[10.0]) - ref) < 1e-10


def test_representations_are_distinct(scene_set):
    rep = scene_set.representations
    for a in REPRESENTATION_NAMES:
        for b in REPRESENTATION_NAMES:
            if a != b:
                # No representation is (close to) a linear copy of another.
                assert _cv_r2(rep[a], rep[b]) < 0.7, (a, b)


def test_each_representation_predicts_its_own_responses(scene_set, rng):
    """A response generated from one representation is best predicted by that representation."""
    rep = scene_set.representations
    for a in REPRESENTATION_NAMES:
        W = rng.standard_normal((rep[a].shape[1], 10)) / np.sqrt(rep[a].shape[1])
        Y = rep[a] @ W + 0.5 * rng.standard_normal((N, 10))
        own = _cv_r2(rep[a], Y)
        assert own > 0.5, a
        for b in REPRESENTATION_NAMES:
            if b != a:
                assert _cv_r2(rep[b], Y) < own - 0.2, (a, b)


def test_events_carry_roles_words_cannot(scene_set):
    """Minimal pairs share caption bag-of-words but not events: roles are bound."""
    pairs = _pairs(scene_set)
    assert pairs
    i, j = pairs[0]
    bag_i = sum((_words(c) for c in scene_set.captions[i]), Counter())
    bag_j = sum((_words(c) for c in scene_set.captions[j]), Counter())
    assert bag_i == bag_j
    assert (
        np.abs(
            scene_set.representations["events"][i] - scene_set.representations["events"][j]
        ).max()
        > 0.5
    )


def _single(scene, k):
    one = dict(scene, objects=[scene["objects"][k]], events=[])
    return one


def test_render_shows_objects_where_scene_says(scene_set):
    size = 200
    for scene in scene_set.scenes[:40]:
        for k, obj in enumerate(scene["objects"]):
            img = render_scene(_single(scene, k), size)
            fill = np.all(img == np.array(COLOURS[obj["colour"]], dtype=np.uint8), axis=-1)
            ys, xs = np.nonzero(fill)
            assert len(xs) > 20, obj
            r = object_radius(obj) * size
            # The object's colour lies inside its box, centred near its position.
            assert np.all(np.abs(xs - obj["x"] * size) <= r + 2)
            assert np.all(np.abs(ys - obj["y"] * size) <= r + 2)
            assert abs(xs.mean() - obj["x"] * size) < 0.6 * r
            assert abs(ys.mean() - obj["y"] * size) < 0.8 * r


def test_categories_have_distinct_shapes():
    base = {"setting": "park", "horizon": 0.3, "events": []}
    masks = []
    for cat in CATEGORIES:
        obj = {"category": cat, "colour": "red", "size": "large", "x": 0.5, "y": 0.6, "facing": 1}
        img = render_scene(dict(base, objects=[obj]), 160)
        masks.append(np.any(img != render_scene(dict(base, objects=[]), 160), axis=-1))
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
            assert iou < 0.85, (CATEGORIES[a], CATEGORIES[b], iou)


def test_render_event_arrow_and_facing():
    obj_a = {
        "category": "dog",
        "colour": "white",
        "size": "medium-sized",
        "x": 0.2,
        "y": 0.7,
        "facing": 1,
    }
    obj_b = {
        "category": "cat",
        "colour": "white",
        "size": "medium-sized",
        "x": 0.8,
        "y": 0.7,
        "facing": 1,
    }
    base = {"setting": "park", "horizon": 0.35, "objects": [obj_a, obj_b]}
    still = render_scene(dict(base, events=[]), 200)
    dark = (15, 15, 15)
    for action in ("chase", "push", "watch", "follow", "kick", "jump over"):
        img = render_scene(dict(base, events=[{"agent": 0, "action": action, "patient": 1}]), 200)
        arrow = np.all(img == np.array(dark, dtype=np.uint8), axis=-1) & np.any(
            img != still, axis=-1
        )
        xs = np.nonzero(arrow)[1]
        assert len(xs) > 10, action
        assert xs.min() > 0.2 * 200 and xs.max() < 0.8 * 200, action  # between the two animals
    # Facing flips the glyph.
    left = render_scene(dict(base, objects=[dict(obj_a, facing=-1)], events=[]), 200)
    right = render_scene(dict(base, objects=[dict(obj_a, facing=1)], events=[]), 200)
    assert not np.array_equal(left, right)


def test_render_is_not_constant_and_sized(scene_set):
    imgs = scene_set.render([0, 1, 2], size=425)
    assert imgs.shape == (3, 425, 425, 3) and imgs.dtype == np.uint8
    assert all(len(np.unique(im.reshape(-1, 3), axis=0)) > 3 for im in imgs)


def test_relations_match_positions(scene_set):
    for scene in scene_set.scenes[:100]:
        objs = scene["objects"]
        for a, phrase, b in scene["relations"]:
            if phrase == "to the left of":
                assert objs[a]["x"] < objs[b]["x"]
            elif phrase == "to the right of":
                assert objs[a]["x"] > objs[b]["x"]
            elif phrase == "above":
                assert objs[a]["y"] < objs[b]["y"]
            elif phrase == "below":
                assert objs[a]["y"] > objs[b]["y"]


def test_subset_reindexes(scene_set):
    i, j = _pairs(scene_set)[0]
    other = next(k for k, sc in enumerate(scene_set.scenes) if sc["minimal_pair_of"] is None)
    sub = scene_set.subset([j, other, i])
    assert len(sub) == 3
    assert sub.scenes[0]["minimal_pair_of"] == 2 and sub.scenes[2]["minimal_pair_of"] == 0
    assert sub.scenes[1]["minimal_pair_of"] is None
    np.testing.assert_array_equal(
        sub.representations["events"][2], scene_set.representations["events"][i]
    )
    assert sub.captions[0] == scene_set.captions[j]
    np.testing.assert_array_equal(sub.render([2], 64), scene_set.render([i], 64))
    lonely = scene_set.subset([i])
    assert lonely.scenes[0]["minimal_pair_of"] is None
    # The original is untouched.
    assert scene_set.scenes[i]["minimal_pair_of"] == j


def test_to_stimuli(scene_set):
    ids = np.arange(10) * 3 + 100
    stim = scene_set.subset(range(10)).to_stimuli(ids[::-1])
    np.testing.assert_array_equal(stim.image_ids, np.sort(ids))
    assert stim.captions[0] == scene_set.captions[9]
    np.testing.assert_array_equal(stim.images([ids[-1]]), scene_set.render([0], 425))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_scenes": 0},
        {"n_scenes": 2.5},
        {"n_scenes": 5, "minimal_pair_fraction": 1.5},
        {"n_scenes": 5, "n_captions": 0},
        {"n_scenes": 5, "random_state": "seed"},
    ],
)
def test_bad_arguments(kwargs):
    n = kwargs.pop("n_scenes")
    with pytest.raises(InputError):
        make_scenes(n, **kwargs)


def test_bad_render_inputs(scene_set):
    with pytest.raises(InputError, match="indices"):
        scene_set.render([N])
    with pytest.raises(InputError, match="indices"):
        scene_set.render(["a"])
    with pytest.raises(BrainAlignError, match="scene"):
        render_scene({"objects": []})
    with pytest.raises(InputError, match="size"):
        render_scene(scene_set.scenes[0], size=2)

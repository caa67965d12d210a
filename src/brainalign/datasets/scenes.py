"""Procedural scenes: objects, attributes, spatial relations and events, with images and captions.

A scene holds 2–4 objects from COCO-named categories (:data:`CATEGORIES`), each with a colour, a
size, a position and a facing direction, in a setting (park, beach, street, room, snow), and one
agent–action–patient event ("a dog chases a cat"). :func:`render_scene` draws it, and 5 simulated
annotators caption it. A fraction of scenes come as *minimal pairs*: the same objects at the same
places with agent and patient swapped, so that their captions use the same words with a different
meaning ("a dog chases a cat" / "a cat chases a dog").

Each :class:`SceneSet` carries the planted representations that generate the virtual brain's
responses (see :mod:`brainalign.datasets._scene_representations`): ``lowlevel`` (image content
by position), ``objects`` (categories and attributes), ``events`` (who does what to whom) and
``layout`` (positions and relations). They come from the scene itself, never from a model.

Examples
--------
>>> from brainalign.datasets.scenes import make_scenes
>>> s = make_scenes(20, random_state=0)
>>> len(s), len(s.captions[0]), s.render([0, 1], size=64).shape
(20, 5, (2, 64, 64, 3))
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from brainalign.datasets._scene_captions import make_captions, relation_phrase
from brainalign.datasets._scene_render import object_radius, render_scene
from brainalign.datasets._scene_representations import (
    REPRESENTATION_NAMES,
    scene_representations,
)
from brainalign.datasets._scene_vocab import (
    AGENT_ACTIONS,
    ANIMATE,
    CATEGORIES,
    CATEGORY_INDEX,
    COLOUR_NAMES,
    PATIENTS,
    PERSON_KINDS,
    SETTING_NAMES,
    SIZE_NAMES,
    SKY,
    SYMMETRIC_ACTIONS,
    nouns_for,
)
from brainalign.datasets.base import Stimuli
from brainalign.errors import InputError
from brainalign.utils.validation import check_random_state

__all__ = [
    "CATEGORIES",
    "REPRESENTATION_NAMES",
    "SceneSet",
    "make_scenes",
    "nouns_for",
    "render_scene",
]


@dataclass(eq=False)
class SceneSet:
    """A set of scenes with captions, categories, images on demand and planted representations.

    Attributes
    ----------
    scenes : list of dict
        JSON-serialisable description of each scene. Procedural scenes hold ``id``, ``setting``,
        ``horizon``, ``objects`` (``category``, ``colour``, ``size``, ``x``, ``y`` in [0, 1]
        image fractions with y down, ``facing`` ±1, ``kind`` for persons), ``events``
        (``agent``, ``action``, ``patient`` as object indices), ``relations``
        (``[i, phrase, j]``), ``minimal_pair_of`` (index of the partner scene or None) and
        ``caption_seed``. COCO scenes hold ``coco_id``, ``file`` and ``split``.
    captions : list of list of str
        Captions of each scene (5 by default), written by different annotators.
    categories : (n_scenes, n_categories) uint8
        Multi-hot object categories.
    category_names : list of str
        Names of the columns of ``categories``.
    representations : dict of str -> (n_scenes, d) float32
        Planted generators ``lowlevel``, ``objects``, ``events``, ``layout``, each with
        standardised columns (over the set they were computed on; :meth:`subset` slices rows and
        does not re-standardise).
    renderer : callable
        ``renderer(scene, size) -> (size, size, 3) uint8``; :func:`render_scene` by default.
    """

    scenes: list[dict]
    captions: list[list[str]]
    categories: np.ndarray
    category_names: list[str]
    representations: dict[str, np.ndarray]
    renderer: Callable[[dict, int], np.ndarray] = field(
        default=render_scene, repr=False, compare=False
    )

    def __post_init__(self):
        n = len(self.scenes)
        if len(self.captions) != n:
            raise InputError(f"captions: {len(self.captions)} caption lists for {n} scenes")
        self.categories = np.asarray(self.categories, dtype=np.uint8)
        if self.categories.shape != (n, len(self.category_names)):
            raise InputError(
                f"categories: expected shape ({n}, {len(self.category_names)}), "
                f"got {self.categories.shape}"
            )
        for name, rep in self.representations.items():
            if rep.ndim != 2 or rep.shape[0] != n:
                raise InputError(
                    f"representations[{name!r}]: expected ({n}, d), got shape {rep.shape}"
                )

    def __len__(self) -> int:
        return len(self.scenes)

    def __repr__(self) -> str:
        dims = {k: v.shape[1] for k, v in self.representations.items()}
        return (
            f"SceneSet(n_scenes={len(self)}, n_categories={len(self.category_names)}, "
            f"representations={dims})"
        )

    def _indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim == 0:
            idx = idx[None]
        if idx.ndim != 1 or not (
            np.issubdtype(idx.dtype, np.integer) or (idx.size == 0 and idx.dtype == float)
        ):
            raise InputError(f"indices: expected a 1-D sequence of ints, got {idx!r}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise InputError(
                f"indices: expected values in [0, {len(self)}), got min {idx.min()}, max {idx.max()}"
            )
        return idx % max(len(self), 1)

    def render(self, indices, size: int = 425) -> np.ndarray:
        """Images of the scenes at ``indices``.

        Returns
        -------
        images : (len(indices), size, size, 3) uint8
        """
        idx = self._indices(indices)
        out = np.empty((len(idx), int(size), int(size), 3), dtype=np.uint8)
        for k, i in enumerate(idx):
            out[k] = self.renderer(self.scenes[i], int(size))
        return out

    def subset(self, indices) -> SceneSet:
        """The scenes at ``indices`` (in that order); ``minimal_pair_of`` is re-indexed.

        A scene whose partner is left out gets ``minimal_pair_of = None``.
        """
        idx = self._indices(indices)
        new_pos = {int(old): new for new, old in enumerate(idx)}
        scenes = []
        for new, old in enumerate(idx):
            scene = copy.deepcopy(self.scenes[old])
            if "id" in scene and "coco_id" not in scene:
                scene["id"] = new
            if scene.get("minimal_pair_of") is not None:
                scene["minimal_pair_of"] = new_pos.get(int(scene["minimal_pair_of"]))
            scenes.append(scene)
        return SceneSet(
            scenes=scenes,
            captions=[list(self.captions[i]) for i in idx],
            categories=self.categories[idx],
            category_names=list(self.category_names),
            representations={k: v[idx] for k, v in self.representations.items()},
            renderer=self.renderer,
        )

    def to_stimuli(self, image_ids=None) -> Stimuli:
        """These scenes as :class:`~brainalign.datasets.base.Stimuli` (ids 0..n-1 by default).

        ``images(ids)`` renders at 425 px (NSD's image size).
        """
        ids = np.arange(len(self)) if image_ids is None else np.asarray(image_ids, dtype=np.int64)
        if ids.shape != (len(self),):
            raise InputError(f"image_ids: expected {len(self)} ids, got shape {ids.shape}")
        order = np.argsort(ids, kind="stable")
        ids_sorted = ids[order]
        sub = self.subset(order)

        def images(query_ids):
            pos = np.searchsorted(ids_sorted, np.asarray(query_ids, dtype=np.int64))
            return sub.render(pos, size=425)

        return Stimuli(
            image_ids=ids_sorted,
            captions=sub.captions,
            categories=sub.categories,
            category_names=list(sub.category_names),
            images=images,
            metadata={"scenes": sub.scenes},
        )


def _place(rng, obj, placed, horizon, min_gap=0.0):
    """Sample a position for ``obj`` that does not overlap ``placed`` (best of 60 tries)."""
    r = object_radius(obj)
    if obj["category"] in SKY:
        ylo, yhi = 0.05 + r, max(0.06 + r, horizon - 0.02)
    else:
        ylo, yhi = horizon + 0.05, 0.97 - r
    best, best_gap = None, -np.inf
    for _ in range(60):
        x = float(rng.uniform(0.03 + r, 0.97 - r))
        y = float(rng.uniform(ylo, max(ylo, yhi)))
        gap = min(
            (np.hypot(x - o["x"], y - o["y"]) - 0.9 * (r + object_radius(o)) for o in placed),
            default=np.inf,
        )
        if gap >= min_gap:
            return x, y
        if gap > best_gap:
            best, best_gap = (x, y), gap
    return best


def _new_object(rng, category):
    obj = {
        "category": category,
        "colour": COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))],
        "size": SIZE_NAMES[rng.integers(len(SIZE_NAMES))],
    }
    if category == "person":
        obj["kind"] = tuple(PERSON_KINDS)[rng.integers(len(PERSON_KINDS))]
    return obj


def _facing(agent, patient):
    return 1 if patient["x"] >= agent["x"] else -1


def _relations(objects):
    return [
        [a, relation_phrase(objects[a], objects[b]), b]
        for a in range(len(objects))
        for b in range(a + 1, len(objects))
    ]


def _make_scene(rng, *, pairable):
    """One scene. ``pairable``: agent and patient are both animate and the action is symmetric."""
    agent_cat = ANIMATE[rng.integers(len(ANIMATE))]
    if pairable:
        patient_options = [c for c in ANIMATE if c != agent_cat]
        patient_cat = patient_options[rng.integers(len(patient_options))]
        actions = [
            a
            for a in SYMMETRIC_ACTIONS
            if a in AGENT_ACTIONS[agent_cat] and a in AGENT_ACTIONS[patient_cat]
        ]
        action = actions[rng.integers(len(actions))]
    else:
        options = AGENT_ACTIONS[agent_cat]
        action = options[rng.integers(len(options))]
        patient_options = [c for c in PATIENTS[action] if c != agent_cat]
        patient_cat = patient_options[rng.integers(len(patient_options))]
    n_objects = int(rng.integers(2, 5))
    setting = SETTING_NAMES[rng.integers(len(SETTING_NAMES))]
    horizon = round(float(rng.uniform(0.3, 0.45)), 4)

    cats = [agent_cat, patient_cat] + [
        CATEGORIES[rng.integers(len(CATEGORIES))] for _ in range(n_objects - 2)
    ]
    objects = [_new_object(rng, c) for c in cats]
    placed = []
    for k, obj in enumerate(objects):
        # Agent and patient keep a clear gap so the event arrow between them is visible.
        x, y = _place(rng, obj, placed, horizon, min_gap=0.1 if k == 1 else 0.0)
        obj["x"], obj["y"] = round(x, 4), round(y, 4)
        placed.append(obj)
    for obj in objects[2:]:
        obj["facing"] = 1 if rng.random() < 0.5 else -1
    objects[0]["facing"] = _facing(objects[0], objects[1])
    objects[1]["facing"] = 1 if rng.random() < 0.5 else -1
    # Agent and patient sit at random list positions, so order carries no role information.
    perm = [int(i) for i in rng.permutation(n_objects)]
    objects = [objects[i] for i in perm]
    event = {"agent": perm.index(0), "action": action, "patient": perm.index(1)}
    return {
        "setting": setting,
        "horizon": horizon,
        "objects": objects,
        "events": [event],
        "relations": _relations(objects),
        "minimal_pair_of": None,
        "caption_seed": int(rng.integers(2**31 - 1)),
    }


def _swap_roles(scene):
    """The minimal-pair partner: same objects and places, agent and patient swapped."""
    partner = copy.deepcopy(scene)
    ev = partner["events"][0]
    ev["agent"], ev["patient"] = ev["patient"], ev["agent"]
    objs = partner["objects"]
    objs[ev["agent"]]["facing"] = _facing(objs[ev["agent"]], objs[ev["patient"]])
    return partner


def make_scenes(
    n_scenes: int,
    *,
    random_state=0,
    minimal_pair_fraction: float = 0.1,
    n_captions: int = 5,
) -> SceneSet:
    """Generate procedural scenes with captions and planted representations.

    Parameters
    ----------
    n_scenes : int
        Number of scenes (≥ 1).
    random_state : int, numpy.random.Generator or None
        Seed; the same arguments and seed give identical scenes, captions and images (bytes).
    minimal_pair_fraction : float in [0, 1]
        Fraction of scenes that belong to a minimal pair (rounded down to an even count). The
        two scenes of a pair have the same objects at the same places with agent and patient
        swapped; ``scenes[i]["minimal_pair_of"]`` is the partner's index (None otherwise).
    n_captions : int
        Captions per scene, each by a different simulated annotator (distinct strings).

    Returns
    -------
    SceneSet
        ``categories`` are multi-hot over :data:`CATEGORIES`; ``representations`` hold
        ``lowlevel`` (n, 192), ``objects`` (n, 49), ``events`` (n, 110) and ``layout`` (n, 45).
    """
    if not isinstance(n_scenes, numbers.Integral) or n_scenes < 1:
        raise InputError(f"n_scenes: expected a positive int, got {n_scenes!r}")
    if not 0.0 <= float(minimal_pair_fraction) <= 1.0:
        raise InputError(
            f"minimal_pair_fraction: expected a number in [0, 1], got {minimal_pair_fraction!r}"
        )
    if not isinstance(n_captions, numbers.Integral) or n_captions < 1:
        raise InputError(f"n_captions: expected a positive int, got {n_captions!r}")
    rng = check_random_state(random_state)
    n_pairs = int(float(minimal_pair_fraction) * n_scenes) // 2
    scenes: list[dict] = []
    for _ in range(n_pairs):
        base = _make_scene(rng, pairable=True)
        scenes += [base, _swap_roles(base)]
    for _ in range(n_scenes - 2 * n_pairs):
        scenes.append(_make_scene(rng, pairable=False))
    # Pairs were built side by side; shuffle so they spread over the set (and over any split).
    order = [int(i) for i in rng.permutation(n_scenes)]
    new_pos = {old: new for new, old in enumerate(order)}
    scenes = [scenes[i] for i in order]
    for k in range(n_pairs):
        a, b = new_pos[2 * k], new_pos[2 * k + 1]
        scenes[a]["minimal_pair_of"], scenes[b]["minimal_pair_of"] = b, a
    for i, scene in enumerate(scenes):
        scene["id"] = i

    captions = [make_captions(s, n_captions, s["caption_seed"]) for s in scenes]
    categories = np.zeros((n_scenes, len(CATEGORIES)), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        for obj in scene["objects"]:
            categories[i, CATEGORY_INDEX[obj["category"]]] = 1
    return SceneSet(
        scenes=scenes,
        captions=captions,
        categories=categories,
        category_names=list(CATEGORIES),
        representations=scene_representations(scenes),
    )

"""The closed world of the procedural scenes: categories, attributes, settings, actions and words.

Everything here is data. Category names are COCO names (plus ``tree``) so that captions read like
COCO captions; the column order of every category-indexed array follows :data:`CATEGORIES`.
"""

from __future__ import annotations

#: Object categories, in column order.
CATEGORIES: tuple[str, ...] = (
    "person",
    "dog",
    "cat",
    "horse",
    "cow",
    "sheep",
    "bird",
    "elephant",
    "car",
    "truck",
    "bicycle",
    "ball",
    "chair",
    "table",
    "bench",
    "tree",
    "umbrella",
    "kite",
)
CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}

#: Categories that can be the agent of an action.
ANIMATE: tuple[str, ...] = ("person", "dog", "cat", "horse", "cow", "sheep", "bird", "elephant")
#: Categories drawn in the sky band of the image.
SKY: frozenset[str] = frozenset({"bird", "kite"})

#: Colour attribute -> RGB fill.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "blue": (31, 90, 200),
    "green": (44, 160, 44),
    "yellow": (250, 215, 30),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
    "brown": (140, 86, 45),
    "orange": (255, 127, 14),
    "purple": (148, 60, 189),
    "gray": (128, 128, 128),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

#: Size attribute -> half-width of the object's box as a fraction of the image side.
SIZES: dict[str, float] = {"small": 0.075, "medium-sized": 0.105, "large": 0.14}
SIZE_NAMES: tuple[str, ...] = tuple(SIZES)

#: Setting -> (sky/wall colour, ground colour).
SETTINGS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "park": ((150, 200, 245), (110, 185, 90)),
    "beach": ((120, 190, 235), (235, 215, 160)),
    "street": ((200, 205, 215), (105, 105, 110)),
    "room": ((235, 225, 200), (170, 120, 80)),
    "snow": ((190, 200, 210), (250, 250, 252)),
}
SETTING_NAMES: tuple[str, ...] = tuple(SETTINGS)
SETTING_PHRASES: dict[str, tuple[str, ...]] = {
    "park": ("in a park", "on the grass", "in a grassy field"),
    "beach": ("on the beach", "on the sand", "by the sea"),
    "street": ("on a street", "in the city", "on the road"),
    "room": ("in a room", "indoors", "inside a house"),
    "snow": ("in the snow", "on a snowy field", "in a snowy park"),
}

#: Actions, in column order, and the verb forms annotators use: (3rd person, -ing, passive).
#: ``None`` as passive means the synonym has no natural passive; the first form is used instead.
ACTIONS: tuple[str, ...] = ("chase", "push", "watch", "follow", "kick", "jump over")
ACTION_INDEX = {name: i for i, name in enumerate(ACTIONS)}
VERBS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "chase": (("chases", "chasing", "chased"), ("runs after", "running after", None)),
    "push": (("pushes", "pushing", "pushed"), ("shoves", "shoving", "shoved")),
    "watch": (
        ("watches", "watching", "watched"),
        ("looks at", "looking at", "looked at"),
        ("stares at", "staring at", "stared at"),
    ),
    "follow": (("follows", "following", "followed"), ("walks behind", "walking behind", None)),
    "kick": (("kicks", "kicking", "kicked"),),
    "jump over": (
        ("jumps over", "jumping over", "jumped over"),
        ("leaps over", "leaping over", None),
    ),
}
#: Actions that read naturally in both directions between two animate objects (minimal pairs).
SYMMETRIC_ACTIONS: tuple[str, ...] = ("chase", "push", "watch", "follow")
#: Which agents may perform which actions.
AGENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "person": ACTIONS,
    "horse": ACTIONS,
    "dog": ("chase", "push", "watch", "follow", "jump over"),
    "cat": ("chase", "push", "watch", "follow", "jump over"),
    "cow": ("chase", "push", "watch", "follow"),
    "sheep": ("chase", "push", "watch", "follow", "jump over"),
    "elephant": ("chase", "push", "watch", "follow"),
    "bird": ("chase", "watch", "follow"),
}

#: Nouns annotators use for each category (the first is the category name).
NOUNS: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "dog": ("dog", "puppy", "pup"),
    "cat": ("cat", "kitten", "kitty"),
    "horse": ("horse", "pony"),
    "cow": ("cow", "calf"),
    "sheep": ("sheep", "lamb"),
    "bird": ("bird",),
    "elephant": ("elephant",),
    "car": ("car", "automobile"),
    "truck": ("truck", "lorry"),
    "bicycle": ("bicycle", "bike"),
    "ball": ("ball",),
    "chair": ("chair", "seat"),
    "table": ("table",),
    "bench": ("bench",),
    "tree": ("tree",),
    "umbrella": ("umbrella", "parasol"),
    "kite": ("kite",),
}
#: A person's noun is fixed per object (annotators agree on it), with "person" as a synonym.
PERSON_KINDS: dict[str, tuple[str, ...]] = {
    "man": ("man", "person", "guy"),
    "woman": ("woman", "person", "lady"),
    "boy": ("boy", "child", "kid"),
    "girl": ("girl", "child", "kid"),
}


def nouns_for(obj: dict) -> tuple[str, ...]:
    """Nouns an annotator may use for ``obj`` (a scene object dict)."""
    if obj["category"] == "person":
        return PERSON_KINDS[obj.get("kind", "man")]
    return NOUNS[obj["category"]]


_GROUND_THINGS = ("car", "truck", "bicycle", "ball", "chair", "table", "bench")
#: Which categories may be the patient of which action (the agent is never its own category).
PATIENTS: dict[str, tuple[str, ...]] = {
    "chase": ANIMATE + ("car", "truck", "bicycle", "ball", "kite"),
    "push": tuple(c for c in ANIMATE if c not in SKY) + _GROUND_THINGS,
    "watch": CATEGORIES,
    "follow": ANIMATE + ("car", "truck", "bicycle"),
    "kick": ("ball", "chair", "table", "bench", "car", "truck", "bicycle", "dog", "cat"),
    "jump over": ("ball", "chair", "table", "bench", "bicycle", "dog", "cat", "sheep", "person"),
}

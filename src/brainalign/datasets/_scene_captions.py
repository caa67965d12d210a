"""Captions of procedural scenes, written by simulated annotators.

Each annotator writes in one style (active, passive, progressive, gerund fragment, "there is",
spatial, setting first), picks synonyms, and includes or omits details (colour, size, setting,
bystander objects). Distinct styles guarantee distinct strings for up to seven captions.

All random choices are keyed by object index, never by role, and drawn in a fixed order. A
minimal-pair partner (the same scene with agent and patient swapped) therefore gets captions with
exactly the same words in a different order: "a dog chases a cat" / "a cat chases a dog".
"""

from __future__ import annotations

import numpy as np

from brainalign.datasets._scene_vocab import SETTING_PHRASES, SKY, VERBS, nouns_for

STYLES: tuple[str, ...] = (
    "active",
    "passive",
    "progressive",
    "gerund",
    "there",
    "spatial",
    "setting_first",
)


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _position_phrase(obj: dict) -> str:
    if obj["category"] in SKY and obj["y"] < 0.45:
        return "in the sky"
    if obj["x"] < 0.38:
        return "on the left"
    if obj["x"] > 0.62:
        return "on the right"
    return "in the middle"


def relation_phrase(a: dict, b: dict) -> str:
    """Spatial relation of object ``a`` to object ``b`` ("to the left of", "above", ...)."""
    dx, dy = b["x"] - a["x"], b["y"] - a["y"]
    if np.hypot(dx, dy) < 0.22 and abs(dy) < 0.12:
        return "next to"
    if abs(dx) >= abs(dy):
        return "to the left of" if dx > 0 else "to the right of"
    return "above" if dy > 0 else "below"


def _noun_phrase(obj: dict, plan: dict, *, position: bool = False, details: bool = True) -> str:
    words = []
    if details and plan["size"]:
        words.append(obj["size"])
    # People wear their colour ("a man in red"); things are their colour ("a red ball").
    person = obj["category"] == "person"
    if details and plan["colour"] and not person:
        words.append(obj["colour"])
    nouns = nouns_for(obj)
    words.append(nouns[plan["noun"] % len(nouns)])
    phrase = _article(" ".join(words))
    if details and plan["colour"] and person:
        phrase += " in " + obj["colour"]
    if position:
        phrase += " " + _position_phrase(obj)
    return phrase


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _draw_plan(scene: dict, rng: np.random.Generator) -> dict:
    """All random choices of one annotator, in a fixed order keyed by object index."""
    objects = []
    for _ in scene["objects"]:
        objects.append(
            {
                "noun": int(rng.integers(0, 6)),
                "colour": bool(rng.random() < 0.6),
                "size": bool(rng.random() < 0.25),
                "mention": bool(rng.random() < 0.5),
            }
        )
    return {
        "objects": objects,
        "verb": int(rng.integers(0, 6)),
        "setting": bool(rng.random() < 0.6),
        "setting_phrase": int(rng.integers(0, 6)),
        "bystanders": int(rng.integers(0, 3)),
        "details": bool(rng.random() < 0.5),
    }


def _write(scene: dict, style: str, plan: dict) -> str:
    objs = scene["objects"]
    event = scene["events"][0]
    ai, pi = event["agent"], event["patient"]
    spatial = style == "spatial"
    details = style != "gerund" or plan["details"]
    agent = _noun_phrase(objs[ai], plan["objects"][ai], position=spatial, details=details)
    patient = _noun_phrase(objs[pi], plan["objects"][pi], position=spatial, details=details)
    forms = VERBS[event["action"]]
    third, ing, passive = forms[plan["verb"] % len(forms)]
    if passive is None:
        passive = forms[0][2]
    phrases = SETTING_PHRASES[scene["setting"]]
    place = phrases[plan["setting_phrase"] % len(phrases)]
    setting = (" " + place) if plan["setting"] and style != "setting_first" else ""

    if style in ("active", "spatial"):
        text = f"{agent} {third} {patient}{setting}"
    elif style == "passive":
        text = f"{patient} is being {passive} by {agent}{setting}"
    elif style == "progressive":
        text = f"{agent} is {ing} {patient}{setting}"
    elif style == "gerund":
        text = f"{agent} {ing} {patient}{setting}"
    elif style == "there":
        text = f"there is {agent} {ing} {patient}{setting}"
    elif style == "setting_first":
        text = f"{place}, {agent} {third} {patient}"
    else:  # pragma: no cover - STYLES is closed
        raise ValueError(style)

    others = [
        i
        for i in range(len(objs))
        if i not in (ai, pi) and plan["objects"][i]["mention"] and style != "gerund"
    ]
    if others:
        phrases_o = [_noun_phrase(objs[i], plan["objects"][i]) for i in others]
        mode = plan["bystanders"]
        if mode == 0:
            text += f" with {_join(phrases_o)} nearby"
        elif mode == 1:
            verb = "is" if len(others) == 1 else "are"
            text += f". {_capitalise(_join(phrases_o))} {verb} also there"
        else:
            # Relate the first bystander to the event participant with the lower index, so the
            # choice does not depend on who is agent and who is patient.
            ref = min(ai, pi)
            ref_noun = nouns_for(objs[ref])[
                plan["objects"][ref]["noun"] % len(nouns_for(objs[ref]))
            ]
            first = _capitalise(phrases_o[0])
            text += f". {first} is {relation_phrase(objs[others[0]], objs[ref])} the {ref_noun}"
    if style != "gerund":
        text += "."
    return _capitalise(text)


def make_captions(scene: dict, n_captions: int = 5, seed: int = 0) -> list[str]:
    """Captions of one scene by ``n_captions`` different simulated annotators.

    Parameters
    ----------
    scene : dict
        A procedural scene (see :func:`brainalign.datasets.make_scenes`); it must have an event.
    n_captions : int
        Number of annotators; up to 7 get distinct styles, more reuse styles with new choices.
    seed : int
        Seed of the annotators' choices (minimal-pair partners share it).

    Returns
    -------
    captions : list of str, distinct
    """
    rng = np.random.default_rng(seed)
    order = [STYLES[i] for i in rng.permutation(len(STYLES))]
    captions: list[str] = []
    k = 0
    attempts = 0
    while len(captions) < n_captions:
        style = order[k % len(order)]
        k += 1
        text = _write(scene, style, _draw_plan(scene, rng))
        attempts += 1
        if text not in captions or attempts > 50 * n_captions:
            captions.append(text)
    return captions

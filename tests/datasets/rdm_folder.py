"""A tiny data set in the RDM folder format, written by hand (numpy, PIL and plain text, as
docs/datasets.md tells a user to), and the ways to damage it that the reader must catch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from brainalign.rsa import compute_rdm
from brainalign.rsa.rdm import squareform_rdm

LABELS = ["cat_1", "cat_2", "dog", "car", "pine cone", "apple"]
CATEGORIES = ["animal", "animal", "animal", "vehicle", "plant", "fruit"]


def random_rdms(rng, n_subjects, n):
    out = []
    for _ in range(n_subjects):
        X = rng.standard_normal((n, 8))
        out.append(squareform_rdm(compute_rdm(X)))
    return np.stack(out)


def write_by_hand(root: Path, rng=None, n_subjects: int = 3) -> dict:
    """A data set written the way the docs say a user would: numpy, PIL and plain text
    (``n_subjects`` subjects: a lab's own data set may have one)."""
    rng = rng or np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "rdms").mkdir()
    (root / "responses").mkdir()
    (root / "models").mkdir()
    lines = ["stimulus\timage\tlabel\tcategory"]
    for i, (label, cat) in enumerate(zip(LABELS, CATEGORIES, strict=True)):
        img = np.full((12, 16, 3), 40 * i, np.uint8)
        Image.fromarray(img).save(root / "images" / f"s{i}.png")
        lines.append(f"s{i}\timages/s{i}.png\t{label}\t{cat}")
    (root / "stimuli.tsv").write_text("\n".join(lines) + "\n")
    it = random_rdms(rng, n_subjects, 6)
    v1 = rng.standard_normal((n_subjects, 6, 10))
    np.save(root / "rdms" / "IT.npy", it.astype(np.float32))
    np.save(root / "responses" / "V1.npy", v1)
    size = np.abs(np.subtract.outer(np.arange(6.0), np.arange(6.0)))
    np.save(root / "models" / "size.npy", size[np.triu_indices(6, 1)])
    (root / "dataset.json").write_text(
        json.dumps({"name": "tiny", "source": "hand-written", "subjects": list("abc")[:n_subjects]})
    )
    return {"IT": it, "V1": v1, "size": size}


def break_folder(root: Path, case: str) -> str:
    """Damage the folder one way; return the file the error must name."""
    it = np.load(root / "rdms" / "IT.npy")
    if case == "non-square":
        np.save(root / "rdms" / "IT.npy", it[:, :, :5])
        return "IT.npy"
    if case == "asymmetric":
        it[1, 0, 3] += 0.5
        np.save(root / "rdms" / "IT.npy", it)
        return "IT.npy"
    if case == "diagonal":
        it[2, 4, 4] = 0.3
        np.save(root / "rdms" / "IT.npy", it)
        return "IT.npy"
    if case == "nan":
        it[0, 1, 2] = it[0, 2, 1] = np.nan
        np.save(root / "rdms" / "IT.npy", it)
        return "IT.npy"
    if case == "single-matrix":
        np.save(root / "rdms" / "IT.npy", it[0])
        return "IT.npy"
    if case == "size-mismatch":
        lines = (root / "stimuli.tsv").read_text().splitlines()
        (root / "stimuli.tsv").write_text("\n".join(lines[:-1]) + "\n")
        return "IT.npy"
    if case == "missing-image":
        (root / "images" / "s3.png").unlink()
        return "stimuli.tsv"
    if case == "missing-column":
        text = (root / "stimuli.tsv").read_text().replace("\tlabel\t", "\tname\t", 1)
        (root / "stimuli.tsv").write_text(text)
        return "stimuli.tsv"
    if case == "duplicate-id":
        text = (root / "stimuli.tsv").read_text().replace("s4\t", "s3\t", 1)
        (root / "stimuli.tsv").write_text(text)
        return "stimuli.tsv"
    if case == "subjects":
        (root / "dataset.json").write_text(json.dumps({"name": "tiny", "subjects": ["a", "b"]}))
        return "dataset.json"
    if case == "pickle":
        np.save(root / "rdms" / "IT.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return "IT.npy"
    if case == "response-nan":
        v1 = np.load(root / "responses" / "V1.npy")
        v1[1, 2, 3] = np.nan
        np.save(root / "responses" / "V1.npy", v1)
        return "V1.npy"
    if case == "no-json":
        (root / "dataset.json").unlink()
        return "dataset.json"
    if case == "twice":
        np.save(root / "rdms" / "V1.npy", it)
        return "V1.npy"
    raise AssertionError(case)

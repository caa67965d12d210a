"""The stages every analysis builds on: each subject's responses, the feature spaces and the
paper's image subsets; and the helpers stages use to reopen them (the data itself is made or
checked by the data kind's stage, :mod:`brainalign.pipeline.data_kinds`).

Every stage is ``fn(params, inputs, ctx) -> dict`` (see :mod:`brainalign.pipeline.core`):
``params`` holds everything that changes the result (it is hashed into the cache key),
``inputs`` the cached results of upstream tasks (arrays memory-mapped), ``ctx`` run-level
settings that do not change results (backend, device, folders). Subjects' betas are never
copied into the cache: tasks reopen them with :func:`brainalign.datasets.load_nsd`, whose own
cache memory-maps them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from brainalign.datasets import load_nsd, load_stimuli
from brainalign.errors import ConfigError, DataFormatError
from brainalign.features import (
    SentenceEncoder,
    embed_texts,
    feature_space,
    feature_space_defaults,
)
from brainalign.pipeline.core import stage
from brainalign.rsa import make_subsets
from brainalign.utils.hashing import files_fingerprint, hash_json

#: Sentence encoder behind each caption feature space (for in-silico sentences and caption banks).
ENCODER_OF_SPACE = {"mpnet": "all-mpnet-base-v2", "minilm": "all-MiniLM-L6-v2"}


#: feature spaces made from captions alone: their task does not read the category files, so an
#: edited ``instances_*.json`` does not rerun them (any other space reads both)
CAPTION_ONLY_SPACES = frozenset(
    {
        "mpnet",
        "minilm",
        "sentence_encoder",
        "mpnetWordAvg_all",
        "mpnet_nouns",
        "mpnet_verbs",
        "mpnet_adjectives",
        "mpnet_adverbs",
        "mpnet_prepositions",
        "mpnet_scrambled",
        "glove_all",
        "glove_nouns",
        "glove_verbs",
        "fasttext_all",
        "fasttext_nouns",
        "fasttext_verbs",
    }
)


# ------------------------------------------------------------------------------------ helpers
def option_files(options: dict) -> dict:
    """``{"option_files": fingerprint}`` of the files and folders an options dict names (word
    vectors, a local encoder folder, network checkpoints), to merge into the parameters of a
    task that reads them; empty when it names none. A string (or a list of strings) that is an
    existing path counts; a folder by every file under it.
    """
    found = {}
    for key, value in sorted(options.items()):
        for v in value if isinstance(value, list | tuple) else [value]:
            if isinstance(v, str | Path) and str(v) and Path(v).exists():
                found[f"{key}:{v}"] = _path_fingerprint(Path(v))
    return {"option_files": hash_json(found)} if found else {}


def _path_fingerprint(path: Path) -> dict:
    if path.is_dir():
        return files_fingerprint(path, (p for p in path.rglob("*") if p.is_file()))
    return files_fingerprint(path.parent, [path])


def reads_categories(space: str) -> bool:
    """Whether the feature space ``space`` reads the stimuli's COCO categories."""
    from brainalign.features.language_layers import parse_layer_space

    caption_layer = parse_layer_space(space) is not None  # mpnet@6: a layer of a caption model
    return not (space in CAPTION_ONLY_SPACES or space.startswith("st:") or caption_layer)


def load_subject(params: dict, ctx: dict, subject: int | None = None, space: str | None = None):
    """The prepared responses of ``params['subject']`` (or ``subject``) in ``params['space']``."""
    return load_nsd(
        params["root"],
        params["subject"] if subject is None else subject,
        space or params["space"],
        cache_dir=ctx.get("nsd_cache"),
        verbose=False,
        test_set=params.get("test_set", "all"),
    )


def feature_rows(feature: dict, image_ids: np.ndarray) -> np.ndarray:
    """Rows of a feature result (``X``, ``ids``) for ``image_ids`` (raises if any is missing)."""
    ids = np.asarray(feature["ids"])
    pos = np.searchsorted(ids, image_ids)
    pos = np.clip(pos, 0, len(ids) - 1)
    if not np.array_equal(ids[pos], image_ids):
        missing = np.setdiff1d(image_ids, ids)[:10]
        raise DataFormatError(
            f"features: no rows for image ids {missing.tolist()}; rebuild the features"
        )
    return np.asarray(feature["X"])[pos]


class _CachedEncoder:
    """A sentence encoder whose ``encode`` goes through the persistent text-embedding cache, so
    captions the feature spaces already embedded are never embedded again (e.g. for the bank)."""

    def __init__(self, encoder):
        self._encoder = encoder
        self.identity = encoder.identity
        self.dim = encoder.dim
        self.name = getattr(encoder, "name", str(encoder))

    def encode(self, texts, verbose=None):
        return embed_texts(list(texts), self._encoder, verbose=False)


@functools.lru_cache(maxsize=4)
def sentence_encoder(name: str, device: str | None):
    """The sentence encoder ``name`` on ``device``, its encodings cached on disk."""
    return _CachedEncoder(SentenceEncoder(name, device=device or "cpu"))


def encoder_of_space(space: str, default_encoder: str) -> str:
    """The sentence encoder behind a caption feature space (``default_encoder`` for mpnet*)."""
    if space == "mpnet" or space.startswith("mpnet"):
        return default_encoder
    if space in ENCODER_OF_SPACE:
        return ENCODER_OF_SPACE[space]
    if space.startswith("st:"):
        return space[3:]
    raise ConfigError(
        f"analyses: feature space {space!r} is not a sentence-encoder space; in-silico contrasts "
        "and caption banks need one (mpnet, minilm or st:<model>)"
    )


# --------------------------------------------------------------------------------------- data
@stage("responses")
def responses(params, inputs, ctx):
    """Prepare one subject's betas (streamed, cached by the loader); keep ids, flags and ROIs."""
    sub = load_subject(params, ctx)
    out = {
        "image_ids": np.asarray(sub.image_ids),
        "shared": np.asarray(sub.shared),
        "hemi_sizes": list(sub.hemi_sizes),
        "roi_names": list(sub.rois),
        "n_units": int(sub.n_units),
        # non-finite betas found while preparing (counted, left out; shown in the report)
        "non_finite": sub.metadata.get("non_finite", {}),
    }
    for name, mask in sub.rois.items():
        out[f"roi_{name}"] = np.asarray(mask, dtype=bool)
    return out


@stage("features")
def features(params, inputs, ctx):
    """One feature space for every image any subject saw."""
    # only the files its key holds (see PlanBuilder.feature)
    stim = load_stimuli(params["root"], categories=reads_categories(params["name"]))
    options = dict(params["options"])
    device = ctx.get("device", "cpu")
    if device != "cpu" and (
        params["name"] in ENCODER_OF_SPACE or params["name"].startswith("mpnet")
    ):
        options.setdefault("device", device)
    fs = feature_space(params["name"], stim, **options)
    return {
        "X": np.asarray(fs.X, dtype=np.float32),
        "ids": np.asarray(fs.image_ids, dtype=np.int64),
    }


#: caption embeddings are computed in this many parallel parts ahead of the spaces that use them
CAPTION_PARTS = 4


def caption_space_encoder(name: str, options: dict, default_encoder: str) -> str | None:
    """The sentence encoder of a space that averages the captions' embeddings (else None)."""
    if name == "mpnet":
        return options.get("encoder") or default_encoder
    if name in ENCODER_OF_SPACE:
        return ENCODER_OF_SPACE[name]
    if name.startswith("st:"):
        return name[3:]
    return None


def caption_texts(source: dict) -> list[str]:
    """Every distinct caption of ``source``, sorted: the data's stimuli (``root``) or a
    COCO folder's caption file (``pool`` and ``split``)."""
    if "pool" in source:
        path = Path(source["pool"]) / "annotations" / f"captions_{source['split']}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataFormatError(f"{path}: cannot read the captions ({exc})") from None
        texts = {str(a["caption"]) for a in doc.get("annotations", [])}
    else:
        stim = load_stimuli(source["root"], categories=False)
        texts = {c for caps in stim.captions for c in caps}
    return sorted(texts)


@stage("caption_embeddings")
def caption_embeddings_part(params, inputs, ctx):
    """Embed one part of a source's captions into the persistent embedding cache, so the
    caption feature spaces (and the networks' targets) read them instead of embedding alone."""
    texts = caption_texts(params["source"])
    part, n_parts = params["part"]
    bounds = np.linspace(0, len(texts), n_parts + 1).round().astype(int)
    chunk = texts[bounds[part] : bounds[part + 1]]
    encoder = SentenceEncoder(params["encoder"], device=ctx.get("device", "cpu"))
    embed_texts(chunk, encoder, verbose=False)
    return {"n_texts": len(chunk)}


@stage("sampling")
def sampling(params, inputs, ctx):
    """The paper's disjoint random image subsets of one subject, shared by every model and ROI."""
    n = len(inputs["subject"]["image_ids"])
    size = min(params["subset_size"], n)
    subsets = make_subsets(n, size=size, random_state=params["random_state"])
    if params.get("max_subsets"):
        subsets = subsets[: params["max_subsets"]]
    return {"subsets": np.asarray(subsets, dtype=np.int64)}


def features_methods(cfg) -> list[str]:
    """The methods paragraph of the feature spaces (of the run's validated config)."""
    feats = cfg.features
    options = feats.options
    text = (
        f"Feature spaces: {', '.join(feats.spaces)}; captions embedded with "
        f"{feats.encoder} one caption at a time and averaged per image (not renormalised)."
    )
    vectors = []
    for name in feats.spaces:
        given = options.get(name, {})
        # an option the config leaves out is the builder's default, read from the builder
        opts = {**feature_space_defaults(name), **given}
        if name.startswith(("glove", "fasttext")):
            source = opts.get("vectors") or (
                "the packaged GloVe 6B 50-d vectors (the paper: GloVe 840B 300-d)"
            )
            vectors.append(f"{name} from {source}")
        if "tagger" in given or name.endswith(("_nouns", "_verbs")):
            tagger = opts.get("tagger")
            vectors.append(
                f"{name} tagged by {'NLTK (as the paper)' if tagger == 'nltk' else 'spaCy en_core_web_sm (the paper: NLTK)'}"
            )
        if name == "multihot":
            cols = opts.get("columns")
            vectors.append(
                "multihot over the paper's 91 COCO category ids"
                if cols == "coco91"
                else "multihot over the data's categories"
            )
    if vectors:
        text += " Controls: " + "; ".join(vectors) + "."
    return [text]


__all__ = [
    "CAPTION_PARTS",
    "ENCODER_OF_SPACE",
    "caption_space_encoder",
    "caption_texts",
    "encoder_of_space",
    "feature_rows",
    "features_methods",
    "load_subject",
    "option_files",
    "reads_categories",
    "sentence_encoder",
]

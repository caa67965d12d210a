"""The study's stages: thin wiring of the public functions of the other subpackages.

Every stage is ``fn(params, inputs, ctx) -> dict`` (see :mod:`brainalign.pipeline.core`):
``params`` holds everything that changes the result (it is hashed into the cache key),
``inputs`` the cached results of upstream tasks (arrays memory-mapped), ``ctx`` run-level
settings that do not change results (backend, device, folders). Subjects' betas are never
copied into the cache: tasks reopen them with :func:`brainalign.datasets.load_nsd`, whose own
cache memory-maps them.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from brainalign.errors import ConfigError, DataFormatError
from brainalign.pipeline.core import stage

#: Sentence encoder behind each caption feature space (for in-silico sentences and caption banks).
ENCODER_OF_SPACE = {"mpnet": "all-mpnet-base-v2", "minilm": "all-MiniLM-L6-v2"}


# ------------------------------------------------------------------------------------ helpers
def _subject(params: dict, ctx: dict):
    from brainalign.datasets import load_nsd

    return load_nsd(
        params["root"],
        params["subject"],
        params["space"],
        cache_dir=ctx.get("nsd_cache"),
        verbose=False,
    )


def _rows(feature: dict, image_ids: np.ndarray) -> np.ndarray:
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
        from brainalign.features import embed_texts

        return embed_texts(list(texts), self._encoder, verbose=False)


@functools.lru_cache(maxsize=4)
def _encoder(name: str, device: str | None):
    from brainalign.features import SentenceEncoder

    return _CachedEncoder(SentenceEncoder(name, device=device or "cpu"))


def _nanmean(x, axis=0) -> np.ndarray:
    """Mean ignoring NaN; units that are NaN for every subject (dead vertices) stay NaN quietly."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis).astype(np.float32)


def _labels_of(rois: dict, n_units: int, order) -> np.ndarray:
    labels = np.full(n_units, "null", dtype="<U12")
    for name in reversed(order):
        if name in rois:
            labels[np.asarray(rois[name], bool)] = name
    return labels


# --------------------------------------------------------------------------------------- data
@stage("virtual_nsd")
def virtual_nsd(params, inputs, ctx):
    """Write the virtual NSD (NSD's layout, planted ground truth)."""
    import json

    from brainalign.datasets import make_virtual_nsd

    root = Path(params["root"])
    make_virtual_nsd(
        root,
        n_subjects=params["n_subjects"],
        spaces=tuple(dict.fromkeys([params["space"], *params.get("also_spaces", [])])),
        random_state=params["random_state"],
        overwrite=True,
        verbose=ctx.get("verbose"),
        **params["options"],
    )
    truth = json.loads((root / "virtual_truth.json").read_text())
    return {"root": str(root), "truth_rois": truth.get("rois", {})}


@stage("nsd_root")
def nsd_root(params, inputs, ctx):
    """A real NSD root: checked once (its fingerprint is part of the key)."""
    from brainalign.datasets import list_subjects

    return {"root": params["root"], "subjects": list_subjects(params["root"])}


@stage("responses")
def responses(params, inputs, ctx):
    """Prepare one subject's betas (streamed, cached by the loader); keep ids, flags and ROIs."""
    sub = _subject(params, ctx)
    out = {
        "image_ids": np.asarray(sub.image_ids),
        "shared": np.asarray(sub.shared),
        "hemi_sizes": list(sub.hemi_sizes),
        "roi_names": list(sub.rois),
        "n_units": int(sub.n_units),
    }
    for name, mask in sub.rois.items():
        out[f"roi_{name}"] = np.asarray(mask, dtype=bool)
    return out


@stage("features")
def features(params, inputs, ctx):
    """One feature space for every image any subject saw."""
    from brainalign.datasets import load_stimuli
    from brainalign.features import feature_space

    stim = load_stimuli(params["root"])
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


@stage("sampling")
def sampling(params, inputs, ctx):
    """The paper's disjoint random image subsets of one subject, shared by every model and ROI."""
    from brainalign.rsa import make_subsets

    n = len(inputs["subject"]["image_ids"])
    size = min(params["subset_size"], n)
    subsets = make_subsets(n, size=size, random_state=params["random_state"])
    if params.get("max_subsets"):
        subsets = subsets[: params["max_subsets"]]
    return {"subsets": np.asarray(subsets, dtype=np.int64)}


# ------------------------------------------------------------------------------------ ROI RSA
@stage("roi_rsa")
def roi_rsa(params, inputs, ctx):
    """RSA of one model in every ROI of one subject (paper §3.4)."""
    from brainalign.rsa.roi import roi_rsa as _roi_rsa

    sub = _subject(params, ctx)
    X = _rows(inputs["model"], sub.image_ids)
    rois = {r: sub.rois[r] for r in params["rois"] if r in sub.rois}
    paper = params["sampling"] == "paper"
    scores = _roi_rsa(
        sub.betas,
        {params["model"]: X},
        rois,
        sampling="subsets" if paper else "full",
        subsets=np.asarray(inputs["sampling"]["subsets"]) if paper else None,
        method=params["method"],
        backend=ctx.get("backend", "numpy"),
        device=ctx.get("device"),
    )
    r = np.array([float(scores.loc[roi, params["model"]]) for roi in rois], dtype=np.float64)
    return {"rois": list(rois), "r": r}


@stage("noise_ceiling")
def noise_ceiling(params, inputs, ctx):
    """Leave-one-subject-out ceiling per ROI on the images every subject saw (paper §3.4)."""
    from brainalign.rsa.ceiling import noise_ceiling as _ceiling
    from brainalign.rsa.roi import roi_rdms

    subs = [_subject({**params, "subject": s}, ctx) for s in params["subjects"]]
    common = functools.reduce(np.intersect1d, [s.image_ids[s.shared] for s in subs])
    if len(common) < 3:
        raise DataFormatError(
            f"noise ceiling: only {len(common)} shared images seen 3 times by every subject; "
            "need at least 3"
        )
    out = {"rois": list(params["rois"]), "n_images": int(len(common))}
    ceiling = np.full((len(subs), len(params["rois"])), np.nan)
    for j, roi in enumerate(params["rois"]):
        rdms = []
        for s in subs:
            rows = np.searchsorted(s.image_ids, common)
            rdms.append(roi_rdms(np.asarray(s.betas)[rows], {roi: s.rois[roi]})[roi])
        ceiling[:, j] = _ceiling(np.stack(rdms))
        if params.get("keep_rdm_of") == roi or j == 0:
            out[f"rdm_{roi}"] = np.asarray(rdms[0], dtype=np.float32)
    out["ceiling"] = ceiling
    out["subjects"] = list(params["subjects"])
    return out


@stage("roi_group")
def roi_group(params, inputs, ctx):
    """Subject × ROI × model table, ceiling-normalised, with group and pairwise tests."""
    import pandas as pd

    from brainalign.stats.group import compare_models, fdr, one_sample_t

    ceil = inputs.get("ceiling")
    rows = []
    for name, res in inputs.items():
        if not name.startswith("rsa|"):
            continue
        _, subject, model = name.split("|")
        for roi, r in zip(res["rois"], np.asarray(res["r"]), strict=True):
            c = np.nan
            if ceil is not None and roi in ceil["rois"]:
                c = float(
                    np.asarray(ceil["ceiling"])[
                        list(ceil["subjects"]).index(int(subject)), ceil["rois"].index(roi)
                    ]
                )
            rows.append(
                {
                    "subject": int(subject),
                    "roi": roi,
                    "model": model,
                    "r": float(r),
                    "ceiling": c,
                    "r_norm": float(r / c) if np.isfinite(c) and c > 0 else np.nan,
                }
            )
    df = pd.DataFrame(rows)
    # seeds of a trained network ("net_mpnet@s3") are averaged per subject before any test, as
    # the paper averages each subject's correlations over its ten network instances
    df["model"] = df["model"].str.split("@").str[0]
    df = df.groupby(["subject", "roi", "model"], as_index=False, sort=False).mean(numeric_only=True)
    df = df.sort_values(["roi", "model", "subject"]).reset_index(drop=True)
    value = "r_norm" if df["r_norm"].notna().any() else "r"
    group, pairs = [], []
    for roi, d in df.groupby("roi", sort=False):
        wide = d.pivot(index="subject", columns="model", values=value)
        raw = d.pivot(index="subject", columns="model", values="r")
        for model in wide.columns:
            t, p = one_sample_t(wide[model].to_numpy()[:, None])
            group.append(
                {
                    "roi": roi,
                    "model": model,
                    "mean": float(wide[model].mean()),
                    "sem": float(wide[model].sem()),
                    "mean_r": float(raw[model].mean()),
                    "t": float(t[0]),
                    "p": float(p[0]),
                    "n_subjects": int(wide[model].notna().sum()),
                }
            )
        if roi in params["comparison_rois"]:
            models = list(wide.columns)
            block = []
            for i, a in enumerate(models):
                for b in models[i + 1 :]:
                    t, p = compare_models(
                        wide[a].to_numpy()[:, None],
                        wide[b].to_numpy()[:, None],
                        paper_compat=params["test"] == "paper",
                    )
                    block.append(
                        {
                            "roi": roi,
                            "model_a": a,
                            "model_b": b,
                            "mean_diff": float((wide[a] - wide[b]).mean()),
                            "t": float(t[0]),
                            "p": float(p[0]),
                        }
                    )
            if block:
                q = fdr(np.array([b["p"] for b in block]), q=params["fdr_q"])
                for b, qv, rej in zip(block, q.qvalues, q.reject, strict=True):
                    b["q"], b["significant"] = float(qv), bool(rej)
                pairs += block
    g = pd.DataFrame(group)
    g["rank"] = g.groupby("roi")["mean"].rank(ascending=False, method="min").astype(int)
    return {
        "table": df.to_dict("list"),
        "group": g.to_dict("list"),
        "pairwise": pd.DataFrame(pairs).to_dict("list"),
        "value": value,
    }


# -------------------------------------------------------------------------------- searchlight
@stage("neighbourhoods")
def neighbourhoods(params, inputs, ctx):
    """Geodesic surface discs of the given radius on fsaverage(5), both hemispheres."""
    from brainalign.datasets import load_fsaverage
    from brainalign.rsa import surface_neighbourhoods

    mesh = load_fsaverage(params["mesh"], surface=params["surface"], fs_dir=params.get("fs_dir"))
    nb = surface_neighbourhoods(
        [mesh["left"], mesh["right"]], radius=params["radius"], verbose=False
    )
    return {
        "indptr": nb.indptr,
        "indices": nb.indices,
        "centres": nb.centres,
        "n_units": int(nb.n_units),
        "hemi_sizes": list(nb.hemi_sizes),
        "radius": float(nb.radius),
    }


def _neighbourhood_slice(nbr: dict, start: int, stop: int, kind: str):
    """Centres ``start:stop`` of cached neighbourhoods (the arrays the stages store)."""
    from brainalign.rsa import Neighbourhoods

    indptr = np.asarray(nbr["indptr"])
    return Neighbourhoods(
        indptr=indptr[start : stop + 1] - indptr[start],
        indices=np.asarray(nbr["indices"][indptr[start] : indptr[stop]]),
        centres=np.asarray(nbr["centres"][start:stop]),
        n_units=int(nbr["n_units"]),
        kind=kind,
        radius=float(nbr["radius"]),
        hemi_sizes=tuple(nbr.get("hemi_sizes", ())),
    )


def _searchlight_maps(sub, nb, params, inputs, ctx) -> dict:
    """One model's searchlight r over ``nb``'s centres, full-n or on the paper's subsets."""
    from brainalign.rsa import searchlight as _searchlight

    X = _rows(inputs["model"], sub.image_ids)
    paper = params["sampling"] == "paper"
    maps = _searchlight(
        sub.betas,
        {params["model"]: X},
        nb,
        method=params["method"],
        mode="subsets" if paper else "full",
        subsets=np.asarray(inputs["sampling"]["subsets"]) if paper else None,
        backend=ctx.get("backend", "numpy"),
        device=ctx.get("device"),
        verbose=False,
    )
    return {"r": np.asarray(maps[0], dtype=np.float32)}


@stage("searchlight")
def searchlight(params, inputs, ctx):
    """Searchlight RSA of one subject and model over one chunk of centres."""
    sub = _subject(params, ctx)
    start, stop = params["centres"]
    nb = _neighbourhood_slice(inputs["neighbourhoods"], start, stop, "surface")
    return _searchlight_maps(sub, nb, params, inputs, ctx)


@stage("searchlight_group")
def searchlight_group(params, inputs, ctx):
    """Group map of one model: mean r, two-tailed one-sample t across subjects, BH-FDR."""
    from brainalign.stats.group import fdr, one_sample_t

    per_subject = []
    for s in params["subjects"]:
        chunks = [inputs[f"sl|{s}|{c}"]["r"] for c in range(params["n_chunks"])]
        per_subject.append(np.concatenate([np.asarray(c) for c in chunks]))
    R = np.stack(per_subject)
    t, p = one_sample_t(R)
    res = fdr(p, q=params["fdr_q"])
    return {
        "r": R.astype(np.float32),
        "mean": _nanmean(R),
        "t": np.asarray(t, np.float32),
        "p": np.asarray(p),
        "significant": np.asarray(res.reject),
    }


# ------------------------------------------------------------------------- volume searchlight
@stage("volume_neighbourhoods")
def volume_neighbourhoods(params, inputs, ctx):
    """Spheres of ``radius`` voxels on one subject's func1pt8mm brain mask (paper §3.3)."""
    from brainalign.rsa import volume_neighbourhoods as _spheres

    sub = _subject(params, ctx)
    if sub.mask is None:
        raise DataFormatError(
            f"subject {params['subject']}: the func1pt8mm responses carry no brain mask; "
            "expected nsddata/ppdata/subjXX/func1pt8mm/brainmask.nii.gz"
        )
    nb = _spheres(sub.mask, radius=params["radius"], min_fraction=params["min_fraction"])
    return {
        "indptr": nb.indptr,
        "indices": nb.indices,
        "centres": nb.centres,
        "n_units": int(nb.n_units),
        "radius": float(nb.radius),
        "mask": np.asarray(sub.mask, dtype=bool),
    }


def _part(n: int, part) -> tuple[int, int]:
    """Bounds of share ``c`` of ``n_parts`` equal shares of ``n`` items."""
    c, n_parts = part
    bounds = np.linspace(0, n, n_parts + 1).round().astype(np.int64)
    return int(bounds[c]), int(bounds[c + 1])


@stage("volume_searchlight")
def volume_searchlight(params, inputs, ctx):
    """Volume searchlight RSA of one subject and model over one share of the sphere centres."""
    sub = _subject(params, ctx)
    nbr = inputs["neighbourhoods"]
    start, stop = _part(len(nbr["indptr"]) - 1, params["part"])
    if stop == start:
        return {"r": np.zeros(0, dtype=np.float32)}
    nb = _neighbourhood_slice(nbr, start, stop, "volume")
    if params["sampling"] == "paper":
        # the subsets index the study space's image order; the volume must list the same images
        ids = np.asarray(inputs["sampling_subject"]["image_ids"])
        if not np.array_equal(ids, np.asarray(sub.image_ids)):
            raise DataFormatError(
                f"subject {params['subject']}: the func1pt8mm betas cover other images "
                f"({len(sub.image_ids)}) than the study's space ({len(ids)}); the paper's subsets "
                "need the same images in both; rebuild the prepared betas or use sampling = 'full'"
            )
    return _searchlight_maps(sub, nb, params, inputs, ctx)


@stage("volume_projection")
def volume_projection(params, inputs, ctx):
    """One subject's volume searchlight map, assembled and projected to fsaverage (paper §3.3).

    Voxels that are no sphere centre (outside the mask, or spheres mostly outside it) are 0, as
    nsdcode treats values it cannot sample (``badval=0``); the projection averages three cortical
    depths with cubic interpolation, then maps the subject's white surface to fsaverage.
    """
    import nibabel as nib

    from brainalign.rsa import project_to_fsaverage
    from brainalign.rsa.project import HEMIS

    nbr = inputs["neighbourhoods"]
    mask = np.asarray(nbr["mask"], dtype=bool)
    r = np.concatenate(
        [np.asarray(inputs[f"chunk{c}"]["r"]) for c in range(params["n_parts"])]
    ).astype(np.float64)
    centres = np.asarray(nbr["centres"])
    if r.shape[0] != centres.shape[0]:
        raise DataFormatError(
            f"subject {params['subject']}: {r.shape[0]} searchlight values for "
            f"{centres.shape[0]} centres; rerun the volume searchlight"
        )
    volume = np.zeros(mask.shape, dtype=np.float64)
    # NaN centres (constant brain RDM) become 0 too: cubic interpolation would spread a NaN
    # over every vertex that samples near it (and nsdcode zeroes NaN before interpolating)
    volume.ravel()[np.flatnonzero(mask)[centres]] = np.nan_to_num(r)
    projected = project_to_fsaverage(volume, params["subject"], params["root"])
    tdir = Path(params["root"]) / "nsddata" / "ppdata" / f"subj{params['subject']:02d}"
    hemi_sizes = [
        int(np.prod(nib.load(str(tdir / "transforms" / f"{h}.white-to-fsaverage.mgz")).shape))
        for h in HEMIS
    ]
    return {
        "r": np.asarray(projected, dtype=np.float32),
        "hemi_sizes": hemi_sizes,
        "n_centres": int(centres.shape[0]),
        "volume": volume.astype(np.float32),
    }


# ----------------------------------------------------------------------------------- encoding
@stage("insilico_vectors")
def insilico_vectors(params, inputs, ctx):
    """Mean sentence embedding of each in-silico category (paper §4)."""
    from brainalign.encoding import PAPER_SENTENCES, sentence_vector

    enc = _encoder(params["encoder"], ctx.get("device"))
    out = {}
    for name in params["categories"]:
        sentences = params["sentences"].get(name) or PAPER_SENTENCES[name]
        out[f"v_{name}"] = np.asarray(sentence_vector(list(sentences), enc), dtype=np.float32)
    out["categories"] = list(params["categories"])
    return out


@stage("encoding")
def encoding(params, inputs, ctx):
    """One subject's encoding map (train non-shared, test shared) and in-silico predictions."""
    from brainalign.encoding import encoding_map, predict_maps

    sub = _subject(params, ctx)
    X = _rows(inputs["model"], sub.image_ids)
    mode = "fracridge" if params["mode"] == "fracridge" else "ridge"
    kw = {"mode": mode, "cv": params["cv"], "backend": ctx.get("backend", "numpy")}
    if mode == "ridge":
        kw["alphas"] = params["alphas"]
    em = encoding_map(sub, X, **kw)
    out = {"r": np.asarray(em.r, dtype=np.float32)}
    vec = inputs.get("insilico")
    if vec is not None:
        for name in vec["categories"]:
            out[f"pred_{name}"] = np.asarray(
                predict_maps([em.model], np.asarray(vec[f"v_{name}"]))[0], np.float32
            )
        out["categories"] = list(vec["categories"])
    return out


@stage("encoding_group")
def encoding_group(params, inputs, ctx):
    """Group encoding map, interparticipant agreement and in-silico contrasts."""
    from brainalign.encoding import interparticipant_agreement
    from brainalign.stats.group import fdr, one_sample_t

    subs = params["subjects"]
    R = np.stack([np.asarray(inputs[f"enc|{s}"]["r"]) for s in subs])
    t, p = one_sample_t(R)
    sig = fdr(p, q=params["fdr_q"]).reject
    out = {
        "r": R,
        "mean": _nanmean(R),
        "t": np.asarray(t, np.float32),
        "significant": np.asarray(sig),
    }
    if params["agreement"]:
        loaded = [_subject({**params, "subject": s}, ctx) for s in subs]
        common = functools.reduce(np.intersect1d, [x.image_ids[x.shared] for x in loaded])
        Y = [np.asarray(x.betas)[np.searchsorted(x.image_ids, common)] for x in loaded]
        out["agreement"] = _nanmean(interparticipant_agreement(Y))
        out["unit_roi"] = _labels_of(
            loaded[0].rois,
            loaded[0].n_units,
            ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"],
        )
    for a, b in params["contrasts"]:
        D = np.stack(
            [
                np.asarray(inputs[f"enc|{s}"][f"pred_{a}"])
                - np.asarray(inputs[f"enc|{s}"][f"pred_{b}"])
                for s in subs
            ]
        )
        tc, pc = one_sample_t(D)
        out[f"contrast_{a}__{b}_t"] = np.asarray(tc, np.float32)
        out[f"contrast_{a}__{b}_sig"] = np.asarray(pc < params["alpha"])
    return out


# ----------------------------------------------------------------------------------- decoding
def _bank_corpus(params) -> tuple[list[str], np.ndarray]:
    """Captions for the bank and the NSD id each came from (-1 for an external corpus)."""
    if params["bank"]:
        from brainalign.decoding import read_corpus

        captions = list(read_corpus(params["bank"]))
        return captions, np.full(len(captions), -1, dtype=np.int64)
    from brainalign.datasets import load_stimuli

    stim = load_stimuli(params["root"])
    caps, ids = [], []
    for i, cs in zip(stim.image_ids, stim.captions, strict=True):
        caps += list(cs)
        ids += [int(i)] * len(cs)
    return caps, np.asarray(ids, dtype=np.int64)


@stage("caption_bank")
def caption_bank(params, inputs, ctx):
    """A caption bank (memory-mapped embeddings) and the caption-consistency ceiling of the test images."""
    from brainalign.datasets import load_stimuli, read_shared_ids
    from brainalign.decoding import CaptionBank, caption_consistency

    captions, ids = _bank_corpus(params)
    enc = _encoder(params["encoder"], ctx.get("device"))
    folder = Path(ctx["work_dir"]) / "banks" / params["bank_key"]
    bank = CaptionBank.build(
        captions, enc, folder, dtype=params["dtype"], overwrite=True, verbose=False
    )
    # the decoding ceiling: each test caption against the mean of its image's other captions
    stim = load_stimuli(params["root"])
    shared = np.intersect1d(read_shared_ids(params["root"]), stim.image_ids)
    per_image = [stim.captions[int(i)] for i in np.searchsorted(stim.image_ids, shared)]
    flat = [c for cs in per_image for c in cs]
    E = np.asarray(enc.encode(flat), dtype=np.float64)
    bounds = np.cumsum([0] + [len(cs) for cs in per_image])
    cons = caption_consistency([E[bounds[i] : bounds[i + 1]] for i in range(len(per_image))])
    return {
        "path": str(bank.path or folder),
        "source_ids": ids,
        "ceiling_ids": shared.astype(np.int64),
        "ceiling": np.asarray(cons["per_image"], np.float32),
    }


@stage("decoding")
def decoding(params, inputs, ctx):
    """Decode caption embeddings from one subject's ROIs; reconstruct captions from the bank."""
    from brainalign.decoding import CaptionBank, decode_subject

    sub = _subject(params, ctx)
    X = _rows(inputs["model"], sub.image_ids)
    res = decode_subject(
        sub,
        X,
        rois=[r for r in params["rois"] if r in sub.rois],
        alphas=params["alphas"],
        backend=ctx.get("backend", "numpy"),
    )
    pred = np.asarray(res.predicted, dtype=np.float32)
    bank = CaptionBank.open(inputs["bank"]["path"])
    source = np.asarray(inputs["bank"]["source_ids"])
    # the test images' own captions are left out: decoding must not retrieve what it is scored on
    sims, idx = bank.search(pred, k=params["k"], exclude=np.isin(source, res.test_ids))
    # "nearest training caption" (paper Fig. 2b): the best match among the training images' captions
    tsims, tidx = bank.search(pred, k=1, exclude=~np.isin(source, res.train_ids))
    ident = {}
    for key, d in res.identification.items():
        for k, v in d.items():
            if not k.startswith("per_image") and np.ndim(v) == 0:
                ident[f"{key}way_{k}"] = float(v)
    return {
        "image_ids": np.asarray(res.test_ids),
        "score": np.asarray(res.scores, np.float32),
        "pred": pred,
        "identification": ident,
        "n_units": int(len(res.units)),
        "top_idx": np.asarray(idx),
        "top_sim": np.asarray(sims, np.float32),
        "train_idx": np.asarray(tidx)[:, 0],
        "train_sim": np.asarray(tsims, np.float32)[:, 0],
    }


# ----------------------------------------------------------------------------------- networks
@stage("train_network")
def train_network(params, inputs, ctx):
    """Train a small BLT network toward caption embeddings or categories; read its last layer."""
    import torch

    from brainalign.datasets import load_stimuli, read_shared_ids
    from brainalign.networks import BLTNet, activations, layer_name, train
    from brainalign.networks.data import ImageData

    torch.manual_seed(params["seed"])
    stim = load_stimuli(params["root"])
    # the shared test images never train a network (paper §7.2)
    test_ids = read_shared_ids(params["root"])
    keep = ~np.isin(stim.image_ids, test_ids)
    if params["target"] == "multihot":
        if stim.categories is None:
            raise DataFormatError(
                "networks: target 'multihot' needs COCO categories in the stimuli"
            )
        T = np.asarray(stim.categories, np.float32)
    else:
        T = _rows(inputs["target"], stim.image_ids)
    ids = stim.image_ids
    reader = stim.images

    def load(indices, _ids=ids[keep]):
        return np.asarray(reader(_ids[np.asarray(indices, dtype=np.int64)]))

    data_all = ImageData(load, {params["target"]: T[keep]}, ids=ids[keep], name="train")
    data, val = data_all.split(n_val=max(8, int(keep.sum()) // 10), random_state=params["seed"])
    net = BLTNet(
        n_outputs=T.shape[1],
        n_layers=params["layers"],
        timesteps=params["timesteps"],
        width=params["width"],
        image_size=params["image_size"],
    )
    device = ctx.get("device", "cpu")
    ckpt = Path(ctx["work_dir"]) / "networks" / params["name"]
    res = train(
        net,
        data,
        params["target"],
        val_data=val,
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        lr=params["learning_rate"],
        random_state=params["seed"],
        device=device,
        checkpoint_dir=ckpt,
        verbose=False,
    )
    last = layer_name(params["layers"] - 1, params["timesteps"] - 1)

    def load_all(ids_):
        return np.asarray(reader(np.asarray(ids_, dtype=np.int64)))

    acts = activations(res.net, load_all, layers=[last], ids=ids, device=device, verbose=False)
    hist = [
        {
            "epoch": h.get("epoch"),
            "train_loss": h.get("train_loss"),
            "val_cosine": h.get("val_cosine"),
        }
        for h in res.history
    ]
    return {
        "X": np.asarray(acts[last], np.float32),
        "ids": np.asarray(ids, np.int64),
        "history": hist,
        "initial_val_cosine": res.initial.get("val_cosine"),
        "checkpoint": str(res.checkpoint),
    }


@stage("zoo_features")
def zoo_features(params, inputs, ctx):
    """Features of a registered vision model (e.g. EfficientNet-lite0) for every image."""
    from brainalign.datasets import load_stimuli
    from brainalign.networks.zoo import model_features

    stim = load_stimuli(params["root"])
    reader = stim.images

    def load_all(ids_):
        return np.asarray(reader(np.asarray(ids_, dtype=np.int64)))

    feats = model_features(
        params["model"],
        load_all,
        ids=stim.image_ids,
        device=ctx.get("device", "cpu"),
        verbose=False,
    )
    X = (
        np.mean(np.stack([np.asarray(f, np.float32) for f in feats]), axis=0)
        if len(feats) > 1
        else np.asarray(feats[0], np.float32)
    )
    return {"X": X, "ids": np.asarray(stim.image_ids, np.int64)}


def nsd_fingerprint(root: str | os.PathLike) -> dict:
    """Names, sizes and modification times of an NSD root's key files (part of cache keys)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"data.root: {str(root)!r} does not exist")
    out = {}
    for sub in ("nsddata/experiments/nsd", "nsddata/ppdata", "nsddata_betas/ppdata"):
        folder = root / sub
        if folder.exists():
            for p in sorted(folder.rglob("*"))[:20000]:
                if p.is_file():
                    st = p.stat()
                    out[str(p.relative_to(root))] = [st.st_size, int(st.st_mtime)]
    return out

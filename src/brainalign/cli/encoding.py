"""Encoding and decoding commands: ``brainalign bank build``, ``brainalign bank search``,
``brainalign decode`` and ``brainalign encode``."""

from __future__ import annotations

from pathlib import Path

import typer

bank_app = typer.Typer(help="Caption banks: build from a corpus, search.", no_args_is_help=True)


@bank_app.command("build")
def bank_build(
    corpus: Path = typer.Argument(
        ..., help="Captions: Conceptual Captions .tsv, COCO .json or .txt (one per line)."
    ),
    out: Path = typer.Argument(..., help="Bank folder to write (resumes an interrupted build)."),
    model: str = typer.Option(
        "all-mpnet-base-v2", "--model", help="Sentence encoder name or folder."
    ),
    dtype: str = typer.Option("float16", "--dtype", help="float16 or float32 embeddings."),
    chunk_size: int = typer.Option(
        2048, "--chunk-size", help="Captions embedded and saved per step."
    ),
    device: str = typer.Option("cpu", "--device", help="Torch device of the encoder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing bank."),
) -> None:
    """Embed every caption of CORPUS and write a searchable caption bank to OUT."""
    from brainalign.decoding import CaptionBank, read_corpus
    from brainalign.features import SentenceEncoder

    captions = read_corpus(corpus)
    encoder = SentenceEncoder(model, device=device)
    bank = CaptionBank.build(
        captions,
        encoder,
        out,
        dtype=dtype,
        chunk_size=chunk_size,
        overwrite=overwrite,
        verbose=True,
    )
    typer.echo(
        f"caption bank: {len(bank)} captions × {bank.dim} ({bank.dtype}) by {bank.identity} -> {out}"
    )


@bank_app.command("search")
def bank_search(
    bank_path: Path = typer.Argument(..., help="Bank folder."),
    texts: list[str] = typer.Argument(..., help="Query sentences."),
    k: int = typer.Option(5, "-k", help="Neighbours per query."),
    model: str = typer.Option("all-mpnet-base-v2", "--model", help="Encoder (must be the bank's)."),
) -> None:
    """Print the K nearest bank captions of each query sentence."""
    from brainalign.decoding import CaptionBank
    from brainalign.features import SentenceEncoder

    bank = CaptionBank.open(bank_path)
    encoder = SentenceEncoder(model)
    scores, idx = bank.search(list(texts), k=k, encoder=encoder)
    for text, s_row, i_row in zip(texts, scores, idx, strict=True):
        typer.echo(text)
        for s, i in zip(s_row, i_row, strict=True):
            typer.echo(f"  {s:.3f}  {bank.captions[i]}")


def _embeddings(root, sub, embeddings_file, model, device):
    """(E aligned with sub.image_ids, identity, encoder or None, stimuli)."""
    import numpy as np

    from brainalign.datasets import load_stimuli
    from brainalign.errors import DataFormatError

    stim = load_stimuli(root, sub.image_ids, categories=False)
    if embeddings_file is not None:
        with np.load(embeddings_file, allow_pickle=False) as z:
            if not {"image_ids", "embeddings", "identity"} <= set(z.files):
                raise DataFormatError(
                    f"{embeddings_file}: expected arrays image_ids, embeddings and identity (the encoder's "
                    f"identity string); found {sorted(z.files)}"
                )
            ids, E, identity = z["image_ids"], z["embeddings"], str(z["identity"])
        pos = {int(i): k for k, i in enumerate(ids)}
        missing = [int(i) for i in sub.image_ids if int(i) not in pos]
        if missing:
            raise DataFormatError(f"{embeddings_file}: no embedding for image ids {missing[:10]} …")
        return E[[pos[int(i)] for i in sub.image_ids]].astype(np.float32), identity, None, stim
    from brainalign.features import SentenceEncoder, caption_embeddings

    encoder = SentenceEncoder(model, device=device)
    return caption_embeddings(stim.captions, encoder, verbose=True), encoder.identity, encoder, stim


@bank_app.callback()
def _bank() -> None:
    """Caption banks."""


def decode(
    root: Path = typer.Argument(..., help="NSD root (real or virtual)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    subject: int = typer.Option(1, "--subject", help="Subject number, 1-based."),
    bank_path: Path | None = typer.Option(
        None, "--bank", help="Caption bank to decode captions from."
    ),
    embeddings_file: Path | None = typer.Option(
        None,
        "--embeddings",
        help="Precomputed .npz (image_ids, embeddings, identity) instead of --model.",
    ),
    model: str = typer.Option(
        "all-mpnet-base-v2", "--model", help="Sentence encoder of the captions."
    ),
    rois: str | None = typer.Option(
        None, "--rois", help="Comma-separated ROIs (default: all streams ROIs)."
    ),
    mode: str = typer.Option(
        "ridge", "--mode", help="ridge (one alpha per dimension) or fracridge (paper)."
    ),
    alphas: str | None = typer.Option(
        None,
        "--alphas",
        help="Comma-separated ridge penalties (default: the decoder's grid, "
        "brainalign.decoding.DECODING_ALPHAS, as the pipeline's analyses.decoding.alphas).",
    ),
    fit_intercept: str | None = typer.Option(
        None,
        "--fit-intercept",
        help="true, false, or paper (the published code's dropped intercept); default: "
        "brainalign.decoding.DECODING_FIT_INTERCEPT, as the pipeline's.",
    ),
    k: int | None = typer.Option(
        None, "-k", help="Bank neighbours kept per image (default: DECODING_K, as the pipeline's)."
    ),
    backend: str = typer.Option("numpy", "--backend", help="numpy or torch."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Decode caption embeddings from a subject's brain (train non-shared, test shared), then
    captions from a bank; write decoded.csv, summary.json and predicted_embeddings.npy to OUT.

    Its defaults (penalty grid, intercept, bank of the data set's own captions, k) are the
    pipeline's [analyses.decoding] defaults."""
    import warnings

    import numpy as np
    import pandas as pd

    from brainalign.datasets import load_nsd
    from brainalign.decoding import (
        DECODING_FIT_INTERCEPT,
        DECODING_K,
        CaptionBank,
        bank_captions,
        caption_scores,
        caption_sources,
        decode_captions,
        human_ceiling,
    )
    from brainalign.utils.io import atomic_path, atomic_save_npy, atomic_write_json

    grid = _alpha_grid(alphas)
    intercept = DECODING_FIT_INTERCEPT if fit_intercept is None else _intercept(fit_intercept)
    k = DECODING_K if k is None else k
    sub = load_nsd(root, subject)
    E, identity, encoder, stim = _embeddings(root, sub, embeddings_file, model, device)
    if bank_path is not None:
        bank = CaptionBank.open(bank_path)
    elif encoder is not None:
        # the pipeline's default bank: the data set's own captions
        bank = CaptionBank.build(bank_captions(stim.captions), encoder, None)
    else:
        raise typer.BadParameter(
            "with --embeddings there is no encoder to embed the data set's captions; "
            "give a caption bank built with the same encoder (--bank, see `brainalign bank build`)",
            param_hint="--bank",
        )
    # one function for the CLI and the pipeline: the test images' own captions are never retrieved
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out_ = decode_captions(
            sub,
            E,
            bank,
            caption_sources(bank.captions, stim.image_ids, stim.captions),
            rois=None if rois is None else [r.strip() for r in rois.split(",") if r.strip()],
            k=k,
            identity=identity,
            mode=mode,
            alphas=grid,
            fit_intercept=intercept,
            backend=backend,
            device=None if backend == "numpy" else device,
        )
    res = out_.decoding
    notes = _decode_warnings(caught, res.decoder, mode)
    test_pos = np.flatnonzero(np.isin(sub.image_ids, res.test_ids))
    references = [stim.captions[i] for i in test_pos]
    summary = {
        "subject": subject,
        "n_train": int(len(res.train_ids)),
        "n_test": int(len(res.test_ids)),
        "n_units": int(len(res.units)),
        "encoder": identity,
        "alphas": [float(a) for a in res.decoder.candidates_] if mode == "ridge" else None,
        "fit_intercept": intercept,
        "alpha_edges": {
            "n_fitted": int(np.sum(~res.decoder.nan_targets_ & ~res.decoder.constant_targets_)),
            "n_smallest": int(res.decoder.edge_counts_[0]),
            "n_largest": int(res.decoder.edge_counts_[1]),
            "smallest_open": bool(res.decoder.edges_open_[0]),
            "largest_open": bool(res.decoder.edges_open_[1]),
        },
        "warnings": notes,
        "mean_prediction_score": float(np.nanmean(res.scores)),
        "identification": {
            key: {kk: v for kk, v in val.items() if not kk.startswith("per_image")}
            for key, val in res.identification.items()
        },
    }
    table = pd.DataFrame({"image_id": res.test_ids, "prediction_score": res.scores})
    table["decoded_caption"] = [bank.captions[i] for i in out_.top_idx[:, 0]]
    table["decoded_score"] = out_.top_sim[:, 0]
    # nearest training caption (paper Fig. 2b): among the training images' captions in the bank
    table["nearest_training_caption"] = [bank.captions[i] if i >= 0 else "" for i in out_.train_idx]
    summary["caption_metrics"] = caption_scores(list(table["decoded_caption"]), references)
    summary["bank"] = {"path": str(bank_path) if bank_path else None, "n_captions": len(bank)}
    if min(len(r) for r in references) >= 2:
        summary["human_ceiling"] = human_ceiling(references)
    table["reference_caption"] = [r[0] for r in references]
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "decoded.csv") as tmp:
        table.to_csv(tmp, index=False)
    atomic_save_npy(out / "predicted_embeddings.npy", res.predicted)
    atomic_write_json(out / "summary.json", summary)
    ident = res.identification.get("2", {})
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    typer.echo(
        f"subj{subject:02d}: {summary['n_test']} test images, mean prediction r = "
        f"{summary['mean_prediction_score']:.3f}, 2-way top-1 = {ident.get('top1', float('nan')):.3f} -> {out}"
    )


def _alpha_grid(text: str | None) -> list[float]:
    """``--alphas`` as floats (the decoder's grid when not given)."""
    from brainalign.decoding import DECODING_ALPHAS

    if text is None:
        return list(DECODING_ALPHAS)
    try:
        grid = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated positive numbers (e.g. 1e-4,1e-2,1,100), got {text!r}",
            param_hint="--alphas",
        ) from None
    if not grid or min(grid) <= 0:
        raise typer.BadParameter(
            f"expected at least one positive penalty, got {text!r}", param_hint="--alphas"
        )
    return grid


def _intercept(text: str) -> bool | str:
    """``--fit-intercept`` as the decoder's ``fit_intercept``."""
    value = {"true": True, "false": False, "paper": "paper"}.get(text.strip().lower())
    if value is None:
        raise typer.BadParameter(
            f"expected true, false or paper, got {text!r}", param_hint="--fit-intercept"
        )
    return value


def _decode_warnings(caught, decoder, mode: str) -> list[str]:
    """The decoder's warnings for summary.json and the terminal; a penalty-grid edge warning
    (many dimensions at an end beyond which a fit could still change) says which option widens
    the grid."""
    import numpy as np

    from brainalign.encoding.ridge import EDGE_WARN_FRACTION

    notes = [str(w.message) for w in caught if not str(w.message).startswith("alphas:")]
    n_fitted = int(np.sum(~decoder.nan_targets_ & ~decoder.constant_targets_))
    what = "alpha" if mode == "ridge" else "fraction"
    cand = np.asarray(decoder.candidates_, dtype=np.float64)
    ends = [
        f"{n} of {n_fitted} embedding dimensions chose the {end} {what} ({value:g})"
        for n, end, value, is_open in zip(
            decoder.edge_counts_,
            ("smallest", "largest"),
            (cand.min(), cand.max()),
            decoder.edges_open_,
            strict=True,
        )
        if n > EDGE_WARN_FRACTION * n_fitted and is_open
    ]
    if ends:
        fix = (
            "widen --alphas (smaller and larger values)"
            if mode == "ridge"
            else "use --mode ridge to choose a penalty per dimension from a grid"
        )
        notes.append("; ".join(ends) + f": their best penalty may lie outside the grid; {fix}")
    return notes


def encode(
    root: Path = typer.Argument(..., help="NSD root (real or virtual)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    subject: int = typer.Option(1, "--subject", help="Subject number, 1-based."),
    embeddings_file: Path | None = typer.Option(
        None,
        "--embeddings",
        help="Precomputed .npz (image_ids, embeddings, identity) instead of --model.",
    ),
    model: str = typer.Option(
        "all-mpnet-base-v2", "--model", help="Sentence encoder of the captions."
    ),
    mode: str = typer.Option(
        "ridge", "--mode", help="ridge (one alpha per unit) or fracridge (paper)."
    ),
    fmt: str = typer.Option(
        "gifti", "--format", help="Surface files: gifti (.func.gii), mgh (.mgh) or mgz (.mgz)."
    ),
    backend: str = typer.Option("numpy", "--backend", help="numpy or torch."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Fit a subject's encoding model (train non-shared, test shared) and write the r map per
    hemisphere plus a per-ROI summary to OUT."""
    import numpy as np

    from brainalign.datasets import load_nsd
    from brainalign.datasets.surfaces import write_hemisphere_maps
    from brainalign.encoding import encoding_map
    from brainalign.errors import InputError
    from brainalign.utils.io import atomic_save_npy, atomic_write_json

    sub = load_nsd(root, subject)
    if not sub.hemi_sizes:
        raise InputError(f"subject {subject}: encode writes surface maps; use the fsaverage space")
    E, identity, _, _ = _embeddings(root, sub, embeddings_file, model, device)
    emap = encoding_map(
        sub,
        E,
        mode=mode,
        backend=backend,
        device=None if backend == "numpy" else device,
        verbose=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    fmt = {"gii": "gifti"}.get(fmt, fmt)  # the name this option used to take
    paths = write_hemisphere_maps(
        out / f"subj{subject:02d}_encoding_r", *sub.split_hemispheres(emap.r), formats=(fmt,)
    )
    atomic_save_npy(out / f"subj{subject:02d}_encoding_r.npy", emap.r)
    summary = {
        "subject": subject,
        "encoder": identity,
        "n_train": int(len(emap.train_ids)),
        "n_test": int(len(emap.test_ids)),
        "roi_mean_r": {
            name: float(np.nanmean(emap.r[np.asarray(m, bool)])) for name, m in sub.rois.items()
        },
        "maps": [str(p) for p in paths],
    }
    atomic_write_json(out / f"subj{subject:02d}_encoding_summary.json", summary)
    typer.echo(f"subj{subject:02d}: encoding r maps -> {', '.join(str(p) for p in paths)}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.add_typer(bank_app, name="bank")
    app.command("decode")(decode)
    app.command("encode")(encode)

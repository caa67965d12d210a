"""Features commands: ``brainalign embed ROOT --space mpnet [--space ...]``."""

from __future__ import annotations

from pathlib import Path

import typer

# the library is imported inside each command: `brainalign --help` loads typer alone


def embed(
    root: Path = typer.Argument(..., help="NSD root (real or virtual)."),
    space: list[str] = typer.Option(
        ["mpnet"],
        "--space",
        "-s",
        help="Feature space to compute (repeat for several; 'list' lists them).",
    ),
    device: str = typer.Option(
        "cpu", "--device", help="Torch device for the encoders, e.g. cuda:0."
    ),
    vectors: Path | None = typer.Option(
        None,
        "--vectors",
        help="Word-vector file (.vec/.txt/.bin) for the glove_*/fasttext_* spaces.",
    ),
    variant: str = typer.Option("words", "--variant", help="POS spaces: 'words' or 'joined'."),
    seed: int = typer.Option(0, "--seed", help="random_state of mpnet_scrambled."),
    out: Path | None = typer.Option(
        None, "--out", help="Also write <space>.npy and <space>_image_ids.npy into this folder."
    ),
    progress: bool | None = typer.Option(
        None,
        "--progress/--no-progress",
        help="Progress bars with time left (default: on a terminal).",
    ),
) -> None:
    """Compute and cache feature spaces for a dataset's stimuli (cached: a re-run only reads)."""
    import time

    from brainalign.datasets import load_stimuli
    from brainalign.errors import InputError
    from brainalign.features import describe_feature_spaces, feature_space, feature_space_options
    from brainalign.utils import atomic_save_npy, atomic_write_json
    from brainalign.utils import progress as progress_bar

    if space == ["list"]:
        for name, text in describe_feature_spaces().items():
            typer.echo(f"{name:22s} {text}")
        return
    for name in space:
        feature_space_options(name)  # unknown names fail before any work
    stim = load_stimuli(root)
    typer.echo(f"{len(stim)} images, {sum(len(c) for c in stim.captions)} captions from {root}")
    given = {"device": device, "vectors": vectors, "variant": variant, "random_state": seed}
    bar = progress_bar(total=len(space), desc="feature spaces", verbose=progress, unit="space")
    for name in space:
        accepted = feature_space_options(name)
        options = {k: v for k, v in given.items() if k in accepted and v is not None}
        if "variant" in options and variant not in ("words", "joined"):
            raise InputError(f"--variant: expected 'words' or 'joined', got {variant!r}")
        t0 = time.perf_counter()
        fs = feature_space(name, stim, verbose=progress, **options)
        bar.update(1)
        typer.echo(f"{name}: {fs.X.shape[0]} × {fs.X.shape[1]} in {time.perf_counter() - t0:.1f} s")
        if out is not None:
            stem = name.replace(":", "_").replace("/", "_")
            atomic_save_npy(out / f"{stem}.npy", fs.X)
            atomic_save_npy(out / f"{stem}_image_ids.npy", fs.image_ids)
            atomic_write_json(out / f"{stem}.json", {"name": name, "params": fs.params})
    bar.close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("embed")(embed)

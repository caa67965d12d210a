"""RSA commands: ``brainalign searchlight BETAS.npy --model M.npy ...`` and ``brainalign subsets``."""

from __future__ import annotations

from pathlib import Path

import typer

# the library is imported inside each command: `brainalign --help` loads typer alone


def _load_npy(path: Path, what: str):
    import numpy as np

    from brainalign.errors import DataFormatError

    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: cannot read the {what} as .npy ({exc})") from exc


def searchlight_cmd(
    betas: Path = typer.Argument(..., help="Betas .npy, shape (n_images, n_units), float."),
    model: list[Path] = typer.Option(
        ...,
        "--model",
        "-m",
        help="Model .npy: features (n_images × d) or a condensed RDM. Repeat for several.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output .npy (n_models × n_centres); a .json sidecar is written beside it.",
    ),
    mesh: str | None = typer.Option(
        None, "--mesh", help="Surface searchlight on this fsaverage mesh, e.g. fsaverage5."
    ),
    surface: str = typer.Option(
        "white", "--surface", help="Surface for geodesic distances (white, pial, ...)."
    ),
    mask: Path | None = typer.Option(
        None,
        "--mask",
        help="Volume searchlight: a 3-D mask (.npy or NIfTI); betas columns = in-mask voxels in C order.",
    ),
    radius: float | None = typer.Option(
        None,
        "--radius",
        help="Geodesic mm (surface) or voxels (volume). Default: brainalign.rsa's "
        "SURFACE_RADIUS_MM or VOLUME_RADIUS_VOXELS (the paper's spheres); the sidecar records "
        "the radius used.",
    ),
    min_fraction: float = typer.Option(
        0.5,
        "--min-fraction",
        help="Volume: keep a centre when this fraction of its sphere is in the mask.",
    ),
    method: str = typer.Option(
        "pearson", "--method", help="pearson | spearman | cosine | kendall_tau_a."
    ),
    subsets: Path | None = typer.Option(
        None, "--subsets", help="Subsets .npy (n_subsets × size): the paper's subset mode."
    ),
    weighted: bool = typer.Option(
        False,
        "--weighted",
        help="Cross-validated weighted RSA at each centre (pearson or cosine): a non-negative "
        "combination of the models fitted on training images, scored on held-out ones. Rows of "
        "the output: the combination's score, each model's score alone, each model's weight, and "
        "each --gain; the sidecar names them.",
    ),
    k_stimuli: int | None = typer.Option(
        None, "--k-stimuli", help="--weighted: image folds (default: rsatoolbox's)."
    ),
    gain: list[str] = typer.Option(
        [],
        "--gain",
        help="--weighted: also the held-out gain of adding this model (its file's stem) to the "
        "others. Repeat for several.",
    ),
    seed: int = typer.Option(0, "--seed", help="--weighted: random_state of the folds."),
    backend: str = typer.Option("numpy", "--backend", help="numpy | torch."),
    device: str | None = typer.Option(None, "--device", help="Torch device, e.g. cuda:0."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | float64."),
    checkpoint_dir: Path | None = typer.Option(
        None, "--checkpoint-dir", help="Resume folder for chunked results."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."
    ),
) -> None:
    """Searchlight RSA of one subject's betas with one or more models (surface or volume)."""
    import time

    import numpy as np

    from brainalign.errors import InputError
    from brainalign.rsa import searchlight, surface_neighbourhoods, volume_neighbourhoods
    from brainalign.utils import atomic_save_npy, atomic_write_json

    if (mesh is None) == (mask is None):
        raise InputError(
            "give exactly one of --mesh (surface searchlight) or --mask (volume searchlight)"
        )
    # no radius given: the neighbourhood functions' own defaults (one place for them)
    given_radius = {} if radius is None else {"radius": radius}
    B = _load_npy(betas, "betas")
    models = {p.stem: np.asarray(_load_npy(p, "model")) for p in model}
    if mesh is not None:
        from brainalign.datasets import load_fsaverage

        nb = surface_neighbourhoods(load_fsaverage(mesh, surface), **given_radius, verbose=progress)
    else:
        if mask.suffix == ".npy":
            m = np.asarray(_load_npy(mask, "mask"))
        else:
            import nibabel as nib

            m = np.asarray(nib.load(str(mask)).dataobj)
        nb = volume_neighbourhoods(
            m > 0, **given_radius, min_fraction=min_fraction, verbose=progress
        )
    mode, subs = (
        ("subsets", np.asarray(_load_npy(subsets, "subsets"))) if subsets else ("full", None)
    )
    if weighted and (subsets or checkpoint_dir):
        raise InputError(
            "--weighted: folds of the images replace --subsets, and it keeps no --checkpoint-dir"
        )
    t0 = time.perf_counter()
    if weighted:
        from brainalign.rsa.weighted_searchlight import weighted_searchlight

        mode = "weighted"
        res = weighted_searchlight(
            B,
            models,
            nb,
            method=method,
            k_stimuli=k_stimuli,
            random_state=seed,
            reduced=gain,
            backend=backend,
            device=device,
            dtype=dtype,
            verbose=progress,
        )
        rows = ["weighted", *(f"single:{m}" for m in res.names)]
        rows += [f"weight:{m}" for m in res.names] + [f"gain:{m}" for m in gain]
        maps = np.vstack(
            [res.score, res.single, res.weights, *(res.gain(m) for m in gain)]
        ).reshape(len(rows), -1)
    else:
        maps = searchlight(
            B,
            models,
            nb,
            method=method,
            mode=mode,
            subsets=subs,
            backend=backend,
            device=device,
            dtype=dtype,
            checkpoint_dir=checkpoint_dir,
            verbose=progress,
        )
        rows = list(models)
    seconds = time.perf_counter() - t0
    atomic_save_npy(out, maps.astype(np.float32))
    atomic_write_json(
        out.with_suffix(".json"),
        {
            "models": list(models),
            "rows": rows,
            "centres": nb.centres,
            "kind": nb.kind,
            "radius": nb.radius,
            "hemi_sizes": list(nb.hemi_sizes),
            "method": method,
            "mode": mode,
            "seconds": seconds,
            "betas": str(betas),
        },
    )
    typer.echo(f"{maps.shape[1]} centres × {maps.shape[0]} rows in {seconds:.1f} s → {out}")


def subsets_cmd(
    n_images: int = typer.Argument(..., help="Number of images of the subject."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npy."),
    size: int = typer.Option(100, "--size", help="Images per subset (the paper: 100)."),
    seed: int = typer.Option(
        0, "--seed", help="random_state; the same seed gives the same subsets."
    ),
) -> None:
    """Draw the paper's disjoint random image subsets once, to reuse across models and ROIs."""
    from brainalign.rsa import make_subsets, save_subsets

    s = make_subsets(n_images, size, random_state=seed)
    save_subsets(out, s)
    typer.echo(f"{s.shape[0]} subsets of {s.shape[1]} images → {out}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("searchlight")(searchlight_cmd)
    app.command("subsets")(subsets_cmd)

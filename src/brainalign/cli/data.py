"""Data commands: ``brainalign virtual-nsd ROOT`` and ``brainalign nsd prepare ROOT``."""

from __future__ import annotations

from pathlib import Path

import typer

# the library is imported inside each command: `brainalign --help` loads typer alone

nsd_app = typer.Typer(help="Work with an NSD root (real or virtual).", no_args_is_help=True)


def virtual_nsd(
    root: Path = typer.Argument(..., help="Output folder (must not exist or be empty)."),
    subjects: int = typer.Option(8, "--subjects", help="Number of subjects."),
    shared: int = typer.Option(120, "--shared", help="Images shown to every subject."),
    unique: int = typer.Option(180, "--unique", help="Images per subject shown only to it."),
    sessions: int = typer.Option(12, "--sessions", help="Sessions of a full subject."),
    spaces: str = typer.Option(
        "fsaverage,func1pt8mm", "--spaces", help="Comma-separated: fsaverage, func1pt8mm."
    ),
    voxel_size: float = typer.Option(4.0, "--voxel-size", help="Voxel size (mm) of the volume."),
    snr: float = typer.Option(0.45, "--snr", help="Median noise-ceiling SNR in the ROIs."),
    coco_folder: Path | None = typer.Option(
        None, "--coco-folder", help="Use a COCO-format folder as stimuli instead of scenes."
    ),
    coco_captions: list[Path] = typer.Option(
        [], "--coco-captions", help="Extra COCO caption json for --coco-folder (repeatable)."
    ),
    seed: int = typer.Option(0, "--seed", help="random_state: same seed, same bytes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty ROOT."),
) -> None:
    """Write a virtual NSD (NSD's layout and formats, planted ground truth) under ROOT."""
    import time

    from brainalign.datasets.virtual import make_virtual_nsd

    t0 = time.perf_counter()
    make_virtual_nsd(
        root,
        n_subjects=subjects,
        n_shared=shared,
        n_unique=unique,
        n_sessions=sessions,
        spaces=tuple(s.strip() for s in spaces.split(",") if s.strip()),
        voxel_size=voxel_size,
        snr=snr,
        coco_folder=coco_folder,
        coco_caption_files=tuple(coco_captions),
        overwrite=overwrite,
        random_state=seed,
    )
    size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
    typer.echo(
        f"virtual NSD written to {root} ({size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s); "
        f"ground truth in {Path(root) / 'virtual_truth.json'}"
    )


@nsd_app.command("prepare")
def nsd_prepare(
    root: Path = typer.Argument(..., help="NSD root (holding nsddata/, nsddata_betas/)."),
    subject: list[int] = typer.Option(..., "--subject", help="Subject number(s), 1-based."),
    space: str = typer.Option("fsaverage", "--space", help="fsaverage or func1pt8mm."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache folder."),
) -> None:
    """Stream a subject's sessions into the on-disk cache (resumes after a kill)."""
    from brainalign.datasets.nsd import prepare_nsd

    for s in subject:
        prep = prepare_nsd(root, s, space, cache_dir=cache_dir, verbose=True)
        typer.echo(
            f"subj{s:02d} {space}: {len(prep.image_ids)} images × {prep.n_units} units from "
            f"{len(prep.sessions)} sessions -> {prep.betas_path}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("virtual-nsd")(virtual_nsd)
    app.add_typer(nsd_app, name="nsd")

"""``brainalign demo``: build a small virtual NSD and summarise one subject."""

from __future__ import annotations

from pathlib import Path

import typer


def _summary(root: Path, subject: int = 1) -> str:
    import json

    import numpy as np

    from brainalign.datasets import load_nsd, load_stimuli

    sub = load_nsd(root, subject, "fsaverage")
    stim = load_stimuli(root, sub.image_ids)
    truth = json.loads((root / "virtual_truth.json").read_text())
    lines = [
        f"subject {subject}: {sub.n_images} images seen 3 times ({int(sub.shared.sum())} shared "
        f"test images) × {sub.n_units} fsaverage5 vertices (lh {sub.hemi_sizes[0]}, "
        f"rh {sub.hemi_sizes[1]}), {sub.metadata['n_sessions']} sessions",
        f"example caption: {stim.captions[0][0]!r}",
        "ROI            vertices  planted representation",
    ]
    for name, info in truth["rois"].items():
        mix = " + ".join(f"{w:g}·{r}" for r, w in info["representations"].items())
        lines.append(f"{name:<14} {int(sub.rois[name].sum()):>8}  {mix}")
    null = ~np.any([m for k, m in sub.rois.items() if k != "nsdgeneral"], axis=0)
    lines.append(f"{'null region':<14} {int(null.sum()):>8}  none (noise only)")
    return "\n".join(lines)


def demo(
    root: Path | None = typer.Option(
        None, "--root", help="Where to write the virtual NSD (default: a temporary folder)."
    ),
    subjects: int = typer.Option(8, "--subjects", help="Number of subjects."),
    seed: int = typer.Option(0, "--seed", help="random_state of the virtual NSD."),
) -> None:
    """Build a small virtual NSD and print a summary of subject 1."""
    import tempfile
    import time

    from brainalign.datasets import make_virtual_nsd

    if root is None:
        root = Path(tempfile.mkdtemp(prefix="brainalign-demo-")) / "nsd"
    root = Path(root)
    t0 = time.perf_counter()
    if not (root / "virtual_truth.json").exists():
        make_virtual_nsd(root, n_subjects=subjects, random_state=seed, verbose=True)
    typer.echo(f"virtual NSD at {root} ({time.perf_counter() - t0:.1f} s)")
    typer.echo(_summary(root, 1))


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("demo")(demo)

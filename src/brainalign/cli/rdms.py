"""RDM data sets: ``brainalign rdms import NAME SOURCE OUT`` and ``brainalign rdms check ROOT``."""

from __future__ import annotations

from pathlib import Path

import typer

# the library is imported inside each command: `brainalign --help` loads typer alone

rdms_app = typer.Typer(
    help="Brain RDM data sets in the folder format of docs/datasets.md.", no_args_is_help=True
)


@rdms_app.command("import")
def import_command(
    name: str = typer.Argument(..., help="Importer: kriegeskorte92 or cichy92."),
    source: Path = typer.Argument(
        ..., help="The real_rdms folder (holding kriegeskorte92/, cichy92/, labels_92.json)."
    ),
    out: Path = typer.Argument(..., help="Folder to write (must not exist unless --overwrite)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT."),
) -> None:
    """Convert a public source into the RDM folder format (written atomically, then checked)."""
    from brainalign.datasets.rdms import import_rdm_dataset

    ds = import_rdm_dataset(name, source, out, overwrite=overwrite)
    _describe(ds)


@rdms_app.command("check")
def check_command(
    root: Path = typer.Argument(..., help="A data set folder in the RDM format."),
    config: Path = typer.Option(
        None,
        "--config",
        help="A study TOML whose [data] reads this folder: also check what it asks of the "
        "data (subjects for its bootstrap, categories, images), as `brainalign run` would.",
    ),
) -> None:
    """Read and check a data set folder (shapes, symmetry, diagonals, NaNs, images)."""
    from brainalign.datasets.rdms import load_rdm_dataset

    _describe(load_rdm_dataset(root))
    if config is not None:
        from brainalign.pipeline.config import load_config

        load_config(config)  # a ConfigError lists every problem, each with its key
        typer.echo(f"{config}: every requirement of the study is met by the data")


def _describe(ds) -> None:
    rois = ", ".join(f"{roi} ({r.shape[0]} subjects)" for roi, r in ds.rdms.items())
    models = f"; models: {', '.join(ds.models)}" if ds.models else ""
    typer.echo(f"{ds.name} at {ds.root}: {ds.n_stimuli} stimuli; ROIs: {rois}{models}")
    one = [roi for roi, r in ds.rdms.items() if r.shape[0] == 1]
    if one:
        typer.echo(
            f"one subject in {', '.join(one)}: inference resamples the stimuli (rdm_rsa "
            "bootstrap = 'auto' or 'stimuli'); no noise ceiling without a second subject"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.add_typer(rdms_app, name="rdms")

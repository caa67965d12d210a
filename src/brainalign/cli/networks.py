"""``brainalign train CONFIG`` and ``brainalign compare-models CONFIG``."""

from __future__ import annotations

from pathlib import Path

import typer

# the library is imported inside each command: `brainalign --help` loads typer alone


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""

    @app.command("train")
    def train_cmd(
        config: Path = typer.Argument(
            ..., help="TOML with [network], [data] and [train] sections."
        ),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Train BLT-vNets (one per seed) toward caption embeddings or categories; resumes if killed."""
        from brainalign.networks.config import run_train_config

        results = run_train_config(config, verbose=not quiet)
        for res in results:
            last = res.history[-1] if res.history else {}
            cos = last.get("val_cosine")
            typer.echo(
                f"{res.checkpoint}: {res.step} steps"
                + (f", validation cosine {cos:.4f}" if cos is not None else "")
                + ("" if res.completed else " (stopped early: run again to resume)")
            )

    @app.command("compare-models")
    def compare_cmd(
        config: Path = typer.Argument(
            ..., help="TOML with [data], [[models]] and [output] sections."
        ),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Noise-ceiling-normalised ROI RSA of vision models: table (CSV, Parquet) and figure."""
        from brainalign.networks.compare import run_compare_config

        result = run_compare_config(config, verbose=not quiet)
        for kind, path in result.files.items():
            typer.echo(f"{kind}: {path}")

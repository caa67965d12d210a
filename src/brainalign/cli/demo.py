"""``brainalign demo``: the whole study on a virtual NSD, with a report and a ground-truth summary."""

from __future__ import annotations

from pathlib import Path

import typer

# the library is imported inside each command: `brainalign --help` loads typer alone


def demo(
    output: Path = typer.Option(
        None, "--output", "-o", help="Output folder (default ./brainalign-demo)."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="A reduced study (3 subjects, small models), for CI."
    ),
    workers: int = typer.Option(
        None, "--workers", "-w", min=1, help="Worker processes (> 1: a Dask LocalCluster)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan and what is cached; run nothing."
    ),
) -> None:
    """Build a virtual NSD (8 subjects), run every analysis of the paper on it, write the report.

    Prints where the report is and, for each ROI, the representation planted in the virtual
    NSD, the best-ranked model of the ROI RSA and whether the two agree.
    """
    from brainalign.pipeline.demo import demo_config, ground_truth_summary, networks_summary
    from brainalign.pipeline.study import plan_study, run_study

    cfg = demo_config(output, quick=quick, workers=workers)
    plan, _, table = plan_study(cfg)
    typer.echo(f"{cfg.name}: {len(plan.subjects)} subjects, output {cfg.output.dir}")
    typer.echo(table)
    if dry_run:
        return
    try:
        res = run_study(cfg, log=lambda m: typer.echo(f"  {m}"), progress=True)
    except KeyboardInterrupt:
        from brainalign.cli.pipeline import interrupted

        interrupted()
    typer.echo(
        f"done in {res.seconds:.0f} s ({len(res.run.computed)} tasks computed, "
        f"{len(res.run.reused)} reused from the cache)"
    )
    typer.echo(f"report: {res.report}")
    typer.echo("ground truth:")
    typer.echo(ground_truth_summary(res))
    nets = networks_summary(cfg.output.dir)
    if nets:
        typer.echo("networks against their shuffled-target controls:")
        typer.echo(nets)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root app."""
    app.command("demo")(demo)

"""``brainalign run CONFIG`` (the whole study, cached and resumable) and ``brainalign report RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

# the library is imported inside each command: `brainalign --help` loads typer alone


def _overrides(workers: int | None, scheduler: str | None, executor: str | None) -> dict:
    compute: dict = {}
    if workers is not None:
        compute["workers"] = workers
        if workers > 1 and executor is None:
            compute["executor"] = "dask"
    if scheduler is not None:
        compute["scheduler"] = scheduler
        compute["executor"] = "dask"
    if executor is not None:
        compute["executor"] = executor
    return {"compute": compute} if compute else {}


def run_command(
    config: Path = typer.Argument(..., help="Study config (TOML), e.g. configs/demo.toml."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan and what is cached; run nothing."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        "-w",
        min=1,
        help="Worker processes (> 1 starts a Dask LocalCluster on loopback).",
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        help="Join a running Dask scheduler (tcp://HOST:PORT or a scheduler file).",
    ),
    executor: str = typer.Option(
        None, "--executor", help="serial | processes | dask (default from the config)."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Output folder (overrides output.dir)."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the HTML report."),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="If another run is using the output folder, wait for it (default: stop).",
    ),
) -> None:
    """Run every analysis of CONFIG that is not cached yet, then write the report.

    Ctrl-C stops the run and its workers; finished tasks stay cached, so the same command
    resumes. --dry-run prints the plan, the folders a run would create or replace, and the
    disk, memory and time each step needs; a study that does not fit the machine stops before
    any work.
    """
    from brainalign.pipeline.config import load_config
    from brainalign.pipeline.estimates import (
        check_resources,
        config_notes,
        describe_steps,
        estimate_steps,
        n_tasks,
    )
    from brainalign.pipeline.study import plan_study, run_study

    overrides = _overrides(workers, scheduler, executor)
    if output is not None:
        overrides["output"] = {"dir": str(output.resolve())}
    cfg = load_config(config, overrides=overrides)
    plan, cache, table = plan_study(cfg)
    who = f"{len(plan.subjects)} subject(s)" if plan.subjects else f"data kind {cfg.data.kind!r}"
    typer.echo(f"study {cfg.name!r}: {who}, output {cfg.output.dir}")
    typer.echo(table)
    for note in config_notes(cfg):
        typer.secho(f"warning: {note}", fg="yellow", err=True)
    if dry_run:
        import textwrap

        from brainalign.pipeline.study import methods_text

        steps = estimate_steps(plan, cache)
        typer.echo(describe_steps(steps, n_tasks(plan)))
        typer.echo("methods (as the report will state them):")
        for paragraph in methods_text(cfg):
            typer.echo(textwrap.fill(paragraph, 100, initial_indent="  ", subsequent_indent="  "))
        # after the table, so the sizes that do not fit are on screen with the refusal
        check_resources(plan, cache)
        return
    try:
        res = run_study(
            cfg,
            report=not no_report,
            log=lambda m: typer.echo(f"  {m}"),
            progress=True,
            wait=wait,
        )
    except KeyboardInterrupt:
        interrupted()
    typer.echo(
        f"done in {res.seconds:.0f} s: {len(res.run.computed)} task(s) computed, "
        f"{len(res.run.reused)} reused from the cache"
    )
    if res.report:
        typer.echo(f"report: {res.report}")


def interrupted() -> None:
    """Ctrl-C: one line saying what was kept, exit status 130 (as a shell does)."""
    typer.secho(
        "interrupted: the workers were stopped; finished tasks are kept in the cache, so the "
        "same command resumes from there",
        fg="yellow",
        err=True,
    )
    raise typer.Exit(130)


def report_command(
    run_dir: Path = typer.Argument(..., help="Output folder of `brainalign run`."),
    out: Path = typer.Option(None, "--out", "-o", help="HTML file (default RUN_DIR/report.html)."),
    check: bool = typer.Option(
        False, "--check", help="Also load it in headless Chromium and check it."
    ),
) -> None:
    """Write the self-contained HTML report of a run folder, finished or not.

    For a run killed before its export, the analyses whose tasks all finished are exported
    first and the others named. Only a folder `brainalign run` made (its .brainalign.json) is
    written into; any other is refused, naming its files.
    """
    from brainalign.pipeline import write_report
    from brainalign.report import check_in_browser

    path = write_report(run_dir, out)
    typer.echo(f"report: {path}")
    if check:
        res = check_in_browser(path, screenshot=path.with_suffix(".png"))
        if not res.ok:
            for p in res.problems:
                typer.secho(f"  {p}", fg="red", err=True)
            raise typer.Exit(1)
        typer.echo(
            f"browser check passed ({len(res.images)} images); screenshot {path.with_suffix('.png')}"
        )


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``report`` to the root app."""
    app.command("run")(run_command)
    app.command("report")(report_command)

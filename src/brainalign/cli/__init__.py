"""The ``brainalign`` command line (typer). Each stage registers its commands from its own module.

Commands import the library inside their bodies, so that ``brainalign --help`` (and a typo's
usage error) loads typer alone, not numpy, pandas, scipy and pydantic.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="brainalign",
    help="Language-model embeddings of scene captions vs the visual brain (Doerig et al. 2025 on NSD).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # help texts are plain text: rich markup would eat every ``[data]`` or ``[[models]]`` (TOML
    # section names) as a style tag; sub-apps inherit this from the root app
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """brainalign: caption embeddings, RSA, encoding, decoding and networks on NSD."""


@app.command()
def version() -> None:
    """Print brainalign's version."""
    from brainalign import __version__

    typer.echo(__version__)


def _register() -> None:
    from brainalign.cli import data, demo, encoding, features, networks, pipeline, rdms, rsa

    for module in (data, rdms, features, rsa, encoding, networks, pipeline, demo):
        module.register(app)


def main() -> None:
    """Entry point: run the app, turning ``BrainAlignError`` into a clean message and exit code 2."""
    from brainalign.errors import BrainAlignError

    _register()
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as n, not raised
    except BrainAlignError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise SystemExit(2) from None
    except (typer.Exit, SystemExit) as exc:
        raise SystemExit(getattr(exc, "exit_code", getattr(exc, "code", 0))) from None
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if isinstance(exc, click.exceptions.Abort):
            raise SystemExit(1) from None
        raise
    if isinstance(code, int) and code:
        raise SystemExit(code)

"""Entry point of the `moby-asm` command and the one place that maps errors to exit codes.

Exit codes:
    0  success
    1  the operation failed (a builder, a registry, a daemon)
    2  invalid input or usage: a file, a value, an option
    3  no consistent selection of components exists
  130  interrupted by Ctrl-C or SIGTERM; outputs and caches were left consistent
"""

from __future__ import annotations

import sys

import typer

from moby_asm import __version__
from moby_asm.cli import boot, build, components, compose, deploy, importing, new, resolve, templates, trust, validate

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNRESOLVABLE = 3
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="moby-asm",
    help="Compose custom container platforms from versioned LinuxKit-style components.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(components.app, name="components")
app.command("validate")(validate.validate)
app.command("lock")(resolve.lock)
app.command("why")(resolve.why)
app.command("tree")(resolve.tree)
app.command("graph")(resolve.graph)
app.command("compose")(compose.compose)
app.command("import")(importing.import_configs)
app.command("build")(build.build)
app.command("run")(boot.run)
app.command("new")(new.new)
app.command("deploy")(deploy.deploy)
app.command("undeploy")(deploy.undeploy)
app.add_typer(templates.publish_app, name="publish")
app.command("pull")(templates.pull)
templates.template_app.command("update")(new.update)
app.add_typer(templates.template_app, name="template")
app.add_typer(trust.key_app, name="key")
app.command("sign")(trust.sign)
app.command("verify")(trust.verify)
app.add_typer(build.cache_app, name="cache")


def _show_version(value: bool) -> None:
    if value:
        print(f"moby-asm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                 callback=_show_version, is_eager=True),
) -> None:
    """Compose custom container platforms from versioned LinuxKit-style components."""


def exit_code(error: Exception) -> int:
    """Return the exit code for an error raised by the library."""
    from moby_asm.errors import Cancelled, InputError, ResolutionError

    if isinstance(error, Cancelled):
        return EXIT_INTERRUPTED
    if isinstance(error, InputError):
        return EXIT_INVALID
    if isinstance(error, ResolutionError):
        return EXIT_UNRESOLVABLE
    return EXIT_FAILED


def run() -> None:
    """Run the command line; library errors are printed as they are, without a traceback."""
    from moby_asm.errors import MobyAsmError

    try:
        app(standalone_mode=True)
    except MobyAsmError as error:
        from moby_asm.cli.output import error_console

        error_console().print(f"error: {error}", markup=False, soft_wrap=True)
        sys.exit(exit_code(error))

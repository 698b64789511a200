"""The `scaling-service` console script: assembles the command groups."""

import typer

from service.cli import offline, remote, server, train, worker

app = typer.Typer(
    name="scaling-service",
    help="Fit scaling laws to training runs and decide how to spend a training budget.",
    no_args_is_help=True,
    add_completion=False,
    # Click's plain help: typer's rich panels print `<bool>` after every flag (--help included)
    # and read brackets in help texts as markup. Sub-groups take the root's mode.
    rich_markup_mode=None,
)
server.register(app)
offline.register(app)
train.register(app)
worker.register(app)
remote.register(app)


if __name__ == "__main__":
    app()

"""The `scaling-service` console script: assembles the command groups."""

import typer

from service.cli import offline, remote, server, train, worker

app = typer.Typer(
    name="scaling-service",
    help="Fit scaling laws to training runs and decide how to spend a training budget.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)
offline.register(app)
train.register(app)
worker.register(app)
remote.register(app)


if __name__ == "__main__":
    app()

"""`remote webhooks`: signed POSTs to an allowed URL when fits or answers change
(docs/integrations.md)."""

from __future__ import annotations

from typing import Annotated, get_args

import typer
from rich.console import Console

from service.cli.options import JsonFlag
from service.cli.output import Column, count, echo_json, print_list
from service.cli.remote import _api
from service.schemas.webhooks import DeliveryOut, EventType, WebhookOut

webhooks_app = typer.Typer(
    help="Webhooks: signed POSTs when fits, recommendations, jobs or the autopilot change.",
    no_args_is_help=True,
)
WebhookIdArg = Annotated[int, typer.Argument(min=1, help="The webhook's id.")]
EVENTS: tuple[str, ...] = get_args(EventType)


def _events(values: list[str]) -> list[str]:
    unknown = [value for value in values if value not in EVENTS]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: choose from {', '.join(EVENTS)}")
    return values


@webhooks_app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where to POST (on the operator's allow-list).")],
    event: Annotated[
        list[str],
        typer.Option(
            callback=_events,
            help=f"An event to send (repeat for several): {', '.join(EVENTS)}.",
        ),
    ],
    experiment: Annotated[
        str | None, typer.Option(help="Only this experiment's events; default: every one's.")
    ] = None,
    watch_flops: Annotated[
        list[float] | None,
        typer.Option(
            help="A budget (FLOPs) whose recommendation recommendation.changed watches "
            "(repeat; default: the autopilot's target)."
        ),
    ] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Subscribe URL to events; prints the signing secret, which is never shown again."""
    body = {
        "url": url,
        "events": event,
        "experiment": experiment,
        "watch_flops": watch_flops or None,
        "description": description,
    }
    with _api(ctx) as api:
        created = api.create_webhook(body)
    if json_out:
        echo_json(created)
        return
    console = Console(highlight=False)
    console.print(f"webhook {created.id}: {', '.join(created.events)} -> {created.url}")
    console.print(f"signing secret (shown once, keep it now): {created.secret}", markup=False)


COLUMNS: list[Column[WebhookOut]] = [
    Column("id", lambda w: str(w.id)),
    Column("experiment", lambda w: w.experiment or "(all)"),
    Column("events", lambda w: ", ".join(w.events)),
    Column("url", lambda w: w.url, one_line=True),
    Column("description", lambda w: w.description, one_line=True),
]


@webhooks_app.command("list")
def list_(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Option(help="Only those that see this experiment.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """The webhooks (never their secrets)."""
    with _api(ctx) as api:
        webhooks = api.list_webhooks(experiment=experiment)
    print_list(webhooks, COLUMNS, title=count(len(webhooks), "webhook"), json_out=json_out)


def _when(delivery: DeliveryOut) -> str:
    moment = delivery.last_attempt_at or delivery.created_at
    return moment.isoformat(timespec="seconds")


DELIVERIES: list[Column[DeliveryOut]] = [
    Column("id", lambda d: str(d.id)),
    Column("event", lambda d: f"{d.event.id} {d.event.type}"),
    Column("experiment", lambda d: d.event.experiment or ""),
    Column("status", lambda d: d.status),
    Column("attempts", lambda d: str(d.attempts)),
    Column("code", lambda d: "" if d.response_code is None else str(d.response_code)),
    Column("last attempt", _when),
    Column("error", lambda d: d.last_error or "", one_line=True),
]


@webhooks_app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook_id: WebhookIdArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    json_out: JsonFlag = False,
) -> None:
    """A webhook's latest deliveries: status, attempts, response code, error."""
    with _api(ctx) as api:
        page = api.list_webhook_deliveries(webhook_id, limit=limit)
    print_list(
        page.items,
        DELIVERIES,
        title=f"webhook {webhook_id}: {count(len(page.items), 'delivery')}",
        json_out=json_out,
    )


@webhooks_app.command("test")
def ping(ctx: typer.Context, webhook_id: WebhookIdArg, json_out: JsonFlag = False) -> None:
    """Queue a ping event to the webhook (the worker sends it)."""
    with _api(ctx) as api:
        delivery = api.test_webhook(webhook_id)
    if json_out:
        echo_json(delivery)
    else:
        Console().print(f"ping queued: delivery {delivery.id}, event {delivery.event.id}")


@webhooks_app.command("delete")
def delete(ctx: typer.Context, webhook_id: WebhookIdArg) -> None:
    """Delete a webhook and its delivery log (needs an admin key)."""
    with _api(ctx) as api:
        api.delete_webhook(webhook_id)
    Console().print(f"webhook {webhook_id} deleted")

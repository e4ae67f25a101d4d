"""Operational commands: `kwit sweep`, `kwit shell` and `kwit simulate stripe`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click
import requests
from flask.cli import with_appcontext

if TYPE_CHECKING:
    from service.runtime import Runtime


def register(cli: click.Group) -> None:
    cli.add_command(sweep)
    cli.add_command(shell)
    cli.add_command(simulate)


@click.command("sweep")
@with_appcontext
def sweep() -> None:
    """Re-enqueue outbox items that are due and not running (inline: run them now).

    Workers do this every KWIT_SWEEP_INTERVAL seconds; run it by hand after an outage, or
    from cron when Kwit runs without Redis.
    """
    from service.db import runtime
    from service.worker import sweep_once

    count = sweep_once(runtime())
    click.echo(f"Swept the outbox: {count} item(s) handed over.")


@click.command("shell")
@with_appcontext
def shell() -> None:
    """Open a Python shell inside the configured Kwit: `rt`, `models`, `sa` and `utcnow` at hand.

    For looking at rows by hand, e.g.
    `with rt.sessions() as s: s.get(models.Invoice, "...")`.
    """
    import code

    from service.db import runtime

    namespace = shell_namespace(runtime())
    code.interact(banner=f"Kwit shell; names: {', '.join(sorted(namespace))}", local=namespace)


def shell_namespace(rt: Runtime) -> dict[str, Any]:
    """What `kwit shell` starts with: the runtime, the models package, SQLAlchemy, the clock."""
    import sqlalchemy as sa

    import models

    return {"rt": rt, "models": models, "sa": sa, "utcnow": models.utcnow}


@click.group("simulate")
def simulate() -> None:
    """Send realistic, correctly signed provider events (like `stripe trigger`)."""


@simulate.command("stripe")
@click.argument(
    "event_type",
    type=click.Choice(
        [
            "invoice.paid",
            "checkout.session.completed",
            "payment_intent.succeeded",
            "charge.refunded",
        ]
    ),
)
@click.option(
    "--url",
    default="http://127.0.0.1:8000/webhooks/stripe",
    show_default=True,
    help="Kwit's Stripe webhook endpoint.",
)
@click.option(
    "--secret",
    envvar="KWIT_STRIPE_WEBHOOK_SECRETS",
    required=True,
    help="Endpoint secret (whsec_…) to sign with [env KWIT_STRIPE_WEBHOOK_SECRETS; "
    "the first one is used].",
)
@click.option("--order", "order_ref", default=None, help="Kwit order id for metadata.kwit_order.")
@click.option("--suffix", default=None, help="Reuse ids across events (same invoice/payment).")
@click.option("--amount", default=12300, show_default=True, type=int, help="Minor units.")
def simulate_stripe(
    event_type: str, url: str, secret: str, order_ref: str | None, suffix: str | None, amount: int
) -> None:
    """Post one signed Stripe EVENT_TYPE event to Kwit and print the answer."""
    try:
        event_id, response = post_sample_event(
            url,
            secret.split(",")[0].strip(),
            event_type,
            order_ref=order_ref,
            suffix=suffix,
            amount=amount,
        )
    except requests.RequestException as exc:
        raise click.ClickException(f"cannot reach {url}: {type(exc).__name__}") from None
    click.echo(f"{event_type} {event_id} → HTTP {response.status_code} {response.text.strip()}")
    if response.status_code >= 400:
        raise SystemExit(1)


def post_sample_event(
    url: str,
    secret: str,
    event_type: str,
    *,
    order_ref: str | None = None,
    suffix: str | None = None,
    amount: int = 12300,
    event_id: str | None = None,
    http: requests.Session | None = None,
) -> tuple[str, requests.Response]:
    """Sign a realistic sample event the way Stripe does and POST it; used by the demo too."""
    from webhooks import samples, stripe

    now = int(time.time())
    event = samples.sample_event(
        event_type, now=now, order_ref=order_ref, suffix=suffix, amount_minor=amount
    )
    if event_id:
        event["id"] = event_id
    body = samples.encode(event)
    header = stripe.sign(body, secret, timestamp=now)
    response = (http or requests).post(
        url,
        data=body,
        timeout=10,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    return event["id"], response

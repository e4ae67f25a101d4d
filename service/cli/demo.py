"""`kwit demo`: the whole flow on SQLite with the emulators; no services, no configuration.

Kwit runs over real HTTP in this process, with both emulators beside it:
an order is registered and paid through the PayNow paywall, a Stripe-signed `invoice.paid`
arrives, both become VAT invoices in the iFirma emulator (numbers, KSeF numbers, PDFs), and the
accountant's archive is written and verified.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import threading
import time
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import click
import requests
from werkzeug.serving import make_server

from models import Role
from models.migrate import upgrade
from service.app import create_app
from service.config import Settings

# Demo-only credentials shared with the local emulators (the public PayNow sandbox keys).
IFIRMA_USER = "demo@example.pl"
IFIRMA_KEY = "EAB0D8ACF3308F3B"
PAYNOW_API_KEY = "97a55694-5478-43b5-b406-fb49ebfdd2b5"
PAYNOW_SIGNATURE_KEY = "b305b996-bca5-4404-a0b7-2ccea3d2b64b"
STRIPE_SECRET = "whsec_demo_only"  # noqa: S105 - demo-only, signs local events

DEMO_ORDER = {
    "external_ref": "SAAS-2026-0001",
    "customer_ref": "cust_7f3a91",
    "currency": "PLN",
    "provider": "paynow",
    "items": [
        {"name": "Plan Pro — listopad", "quantity": 1, "unit_gross_minor": 12300, "vat_rate": "23"},
        {"name": "Dodatkowe stanowisko", "quantity": 2, "unit_gross_minor": 2460, "vat_rate": "23"},
    ],
    "buyer": {
        "name": "Biuro Rachunkowe Przykład sp. z o.o.",
        "nip": "5260250995",
        "email": "faktury@przyklad.example",
        "address": {
            "line1": "ul. Prosta 1/2",
            "postal_code": "00-838",
            "city": "Warszawa",
            "country": "PL",
        },
    },
}


class Story:
    """Prints numbered, readable steps."""

    def __init__(self) -> None:
        self.step = 0

    def say(self, text: str) -> None:
        self.step += 1
        click.echo(f"{self.step:>2}. {text}")

    def detail(self, text: str) -> None:
        click.echo(f"      {text}")


class Server:
    """A WSGI app on a free local port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run_demo(workdir: Path) -> dict[str, Any]:
    """Run the demo in `workdir`; return what happened (tests read it)."""
    from emulators import ifirma as ifirma_emulator
    from emulators import paynow as paynow_emulator

    story = Story()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines in the story
    ifirma_server, ifirma_url = ifirma_emulator.start_in_thread(
        user=IFIRMA_USER, keys={"faktura": IFIRMA_KEY, "abonent": IFIRMA_KEY}, ksef_delay_gets=0
    )
    story.say(f"Started the iFirma emulator at {ifirma_url}")
    paynow_server, paynow_url = paynow_emulator.start_in_thread(
        api_key=PAYNOW_API_KEY, signature_key=PAYNOW_SIGNATURE_KEY, notify_url=None
    )
    settings = Settings(
        env="development",
        database_url=f"sqlite:///{workdir / 'kwit-demo.db'}",
        blob_dir=str(workdir / "blobs"),
        log_level="ERROR",
        stripe_webhook_secrets=(STRIPE_SECRET,),
        paynow_api_key=PAYNOW_API_KEY,
        paynow_signature_key=PAYNOW_SIGNATURE_KEY,
        paynow_base_url=paynow_url,
        ifirma_user=IFIRMA_USER,
        ifirma_invoice_key=IFIRMA_KEY,
        ifirma_abonent_key=IFIRMA_KEY,
        ifirma_base_url=ifirma_url,
        ifirma_timeout=10.0,
    )
    upgrade(settings.database_url)
    story.say(f"Created {settings.database_url.removeprefix('sqlite:///')} (SQLite, migrated)")
    app = create_app(settings)
    kwit = Server(app)
    # Kwit's port is known only now; PayNow posts its signed notifications to its webhook.
    paynow_server.app.extensions["paynow_emulator"].notify_url = f"{kwit.url}/webhooks/paynow"
    story.say(f"Started the PayNow emulator at {paynow_url} and Kwit at {kwit.url} (jobs inline)")
    try:
        return _flow(story, app, kwit.url, paynow_url, ifirma_url, workdir)
    finally:
        kwit.stop()
        paynow_server.shutdown()
        paynow_server.server_close()
        ifirma_server.shutdown()
        ifirma_server.server_close()
        app.extensions["kwit"].close()


def _flow(
    story: Story, app: Any, kwit: str, paynow: str, ifirma: str, workdir: Path
) -> dict[str, Any]:
    from service.auth import create_key
    from service.cli.ops import post_sample_event

    with app.extensions["kwit"].sessions.begin() as session:
        backend = create_key(session, name="demo-backend", role=Role.BACKEND).token
        accountant = create_key(session, name="demo-accountant", role=Role.ACCOUNTANT).token
    story.say("Created a backend and an accountant API key (only their hashes are stored)")
    http = requests.Session()

    created = http.post(
        f"{kwit}/v1/orders",
        json=DEMO_ORDER,
        headers={"Authorization": f"Bearer {backend}", "Idempotency-Key": '"demo-order-1"'},
        timeout=30,
    )
    _expect(created, 201, "POST /v1/orders")
    order = created.json()
    story.say(f"Backend registered order {order['external_ref']} → Kwit order {order['id']}")
    story.detail(f"gross {order['gross_minor'] / 100:.2f} PLN; buyer data stored only encrypted")
    story.detail(f"PayNow payment created; redirect the buyer to {order['redirect_url']}")

    payment_id = order["payments"][0]["provider_payment_id"]
    paid = http.post(
        f"{paynow}/paywall/{payment_id}/pay", headers={"Accept": "application/json"}, timeout=60
    )
    _expect(paid, 200, "paywall Pay")
    story.say(f"The buyer paid on the PayNow paywall ({payment_id})")
    story.detail("PayNow sent signed notifications PENDING → CONFIRMED to /webhooks/paynow")
    paynow_order = _order(http, kwit, backend, order["id"])
    invoice = paynow_order["invoices"][0]
    story.say(
        f"Order is {paynow_order['status']}; invoice {invoice['number']} is {invoice['state']}"
    )
    story.detail(
        f"KSeF number {invoice['ksef_number']}; buyer data erased: "
        f"{not paynow_order['billing_held']}"
    )

    # What `kwit simulate stripe invoice.paid` sends: a Stripe Billing invoice for a new customer.
    url = f"{kwit}/webhooks/stripe"
    event_id, answer = post_sample_event(
        url, STRIPE_SECRET, "invoice.paid", suffix="demo", http=http
    )
    _expect(answer, 200, "Stripe webhook")
    story.say(f"Stripe sent a signed invoice.paid ({event_id}) → {answer.json()['outcome']}")
    _, again = post_sample_event(
        url, STRIPE_SECRET, "invoice.paid", suffix="demo", event_id=event_id, http=http
    )
    story.detail(f"the same event delivered again → {again.json()['outcome']} (no second invoice)")

    listing = http.get(
        f"{kwit}/v1/invoices", headers={"Authorization": f"Bearer {accountant}"}, timeout=30
    ).json()
    story.say(f"The accountant lists {len(listing['items'])} issued invoices:")
    for item in listing["items"]:
        story.detail(
            f"{item['number']:<12} {item['gross_minor'] / 100:>8.2f} PLN  "
            f"KSeF {item['ksef_number']}  via {item['provider']}  "
            f"kept until {item['retain_until']} ({item['retention_basis']})"
        )

    today = date.today().isoformat()
    archive = http.get(
        f"{kwit}/v1/archives/invoices",
        params={"from": today, "to": today},
        headers={"Authorization": f"Bearer {accountant}"},
        timeout=60,
    )
    _expect(archive, 200, "GET /v1/archives/invoices")
    path = workdir / f"kwit-invoices-{today}.zip"
    path.write_bytes(archive.content)
    verified = _verify_archive(archive.content)
    story.say(f"Wrote the accountant's archive: {path}")
    story.detail(f"{verified} files, checksums verified (sha256sum -c SHA256SUMS)")
    ifirma_docs = requests.get(
        f"{ifirma.removesuffix('/iapi')}/__emulator__/state", timeout=10
    ).json()["counts"]["invoices"]
    story.detail(f"iFirma emulator holds {ifirma_docs} invoices: one per paid order")
    return {
        "order": paynow_order,
        "invoices": listing["items"],
        "archive": path,
        "ifirma_invoices": ifirma_docs,
    }


def _order(http: requests.Session, kwit: str, token: str, order_id: str) -> dict[str, Any]:
    """The order as the backend sees it, once its invoice has been issued."""
    deadline = time.monotonic() + 30
    while True:
        order = http.get(
            f"{kwit}/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        invoices = order.get("invoices") or []
        if invoices and invoices[0]["state"] == "issued" and invoices[0]["ksef_number"]:
            return order
        if time.monotonic() > deadline:
            raise click.ClickException(f"the invoice was not issued in time: {invoices}")
        time.sleep(0.2)


def _verify_archive(content: bytes) -> int:
    """Check every file against SHA256SUMS, as `sha256sum -c` would."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        sums = archive.read("SHA256SUMS").decode().splitlines()
        for line in sums:
            digest, name = line.split("  ", 1)
            if hashlib.sha256(archive.read(name)).hexdigest() != digest:
                raise click.ClickException(f"archive checksum mismatch for {name}")
        return len(sums)


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise click.ClickException(f"{what} answered {response.status_code}: {response.text[:300]}")


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the demo database, PDFs and archive (default: a new temp directory).",
)
def demo(workdir: Path | None) -> None:
    """Run the whole Kwit flow locally on SQLite with the PayNow and iFirma emulators.

    Needs no database, Redis or configuration: an order is registered and paid through PayNow,
    a Stripe invoice.paid arrives, both are invoiced in iFirma, and the archive is written.
    """
    target = workdir or Path(tempfile.mkdtemp(prefix="kwit-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    click.echo(f"Kwit demo in {target}\n")
    result = run_demo(target)
    click.echo(f"\nDone. The archive is {result['archive']}")

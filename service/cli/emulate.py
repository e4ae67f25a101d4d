"""`kwit emulate ifirma|paynow`: local fake providers for the demo, tests and benchmarks."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    cli.add_command(emulate)


@click.group("emulate")
def emulate() -> None:
    """Run a local emulator of a provider (like stripe-mock).

    Emulators take the same credentials as Kwit (KWIT_IFIRMA_*, KWIT_PAYNOW_*) from the
    environment unless flags override them. They expose their state at GET /__emulator__/state
    and fault switches at POST /__emulator__/faults.
    """


@emulate.command("ifirma")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8085, show_default=True, type=int)
@click.option(
    "--user",
    envvar="KWIT_IFIRMA_USER",
    default="demo@example.pl",
    show_default=True,
    help="iFirma login to accept [env KWIT_IFIRMA_USER].",
)
@click.option(
    "--invoice-key",
    envvar="KWIT_IFIRMA_INVOICE_KEY",
    default="EAB0D8ACF3308F3B",
    show_default=True,
    help="hex `faktura` key [env KWIT_IFIRMA_INVOICE_KEY].",
)
@click.option(
    "--abonent-key",
    envvar="KWIT_IFIRMA_ABONENT_KEY",
    default="EAB0D8ACF3308F3B",
    show_default=True,
    help="hex `abonent` key [env KWIT_IFIRMA_ABONENT_KEY].",
)
@click.option(
    "--ksef-delay-gets",
    default=1,
    show_default=True,
    type=int,
    help="GETs of an invoice before KSeF accepts it.",
)
@click.option("--quiet", is_flag=True, help="Do not log each request.")
def emulate_ifirma(
    host: str,
    port: int,
    user: str,
    invoice_key: str,
    abonent_key: str,
    ksef_delay_gets: int,
    quiet: bool,
) -> None:
    """Fake iFirma API at http://HOST:PORT/iapi (strict auth, numbering, KSeF, PDFs, faults)."""
    from emulators import ifirma

    ifirma.serve(
        host,
        port,
        quiet=quiet,
        user=user,
        keys={"faktura": invoice_key, "abonent": abonent_key},
        ksef_delay_gets=ksef_delay_gets,
    )


@emulate.command("paynow")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8095, show_default=True, type=int)
@click.option(
    "--notify-url",
    default=None,
    help="Where to post signed notifications, e.g. http://127.0.0.1:8000/webhooks/paynow.",
)
@click.option(
    "--api-key",
    envvar="KWIT_PAYNOW_API_KEY",
    default="97a55694-5478-43b5-b406-fb49ebfdd2b5",
    show_default=True,
    help="Api-Key to accept [env KWIT_PAYNOW_API_KEY].",
)
@click.option(
    "--signature-key",
    envvar="KWIT_PAYNOW_SIGNATURE_KEY",
    default="b305b996-bca5-4404-a0b7-2ccea3d2b64b",
    show_default=True,
    help="Signature-Key for requests and notifications [env KWIT_PAYNOW_SIGNATURE_KEY].",
)
@click.option("--public-url", default=None, help="Base URL used in redirect URLs.")
def emulate_paynow(
    host: str,
    port: int,
    notify_url: str | None,
    api_key: str,
    signature_key: str,
    public_url: str | None,
) -> None:
    """Fake PayNow v3 API with a paywall page (Pay / Reject) that sends signed notifications."""
    from emulators import paynow

    click.echo(
        f"PayNow emulator on http://{host}:{port} (notifications to {notify_url or 'nobody'})"
    )
    paynow.serve(
        host,
        port,
        api_key=api_key,
        signature_key=signature_key,
        notify_url=notify_url,
        public_url=public_url,
    )

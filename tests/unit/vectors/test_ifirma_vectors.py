"""iFirma worked examples of docs/protocols/ifirma.md that no test next to the code pins yet.

The authentication vectors live in tests/unit/invoicing/test_ifirma_client.py and the payload
example in tests/unit/invoicing/test_payload.py. This file adds the invoice-number path example,
the list of KSeF document kinds and the read side of the example exchange.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses

from invoicing.ifirma import KSEF_KINDS, IFirmaClient, auth_header, ksef_status

BASE = "https://www.ifirma.pl/iapi"
USER = "demo@example.pl"
KEY = "EAB0D8ACF3308F3B"


@pytest.fixture
def client() -> Iterator[IFirmaClient]:
    with requests.Session() as session:
        yield IFirmaClient(session, user=USER, keys={"faktura": KEY}, base_url=BASE)


# --- "Invoice numbers and paths": 314/2014 is addressed as 314_2014 -----------------------------


@responses.activate
def test_full_number_314_2014_is_addressed_with_an_underscore(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/fakturakraj/314_2014.json", json={"PelnyNumer": "314/2014"})
    assert client.get_invoice("314/2014")["PelnyNumer"] == "314/2014"
    sent = responses.calls[0].request
    assert sent.headers["Authentication"] == auth_header(
        f"{BASE}/fakturakraj/314_2014.json", USER, "faktura", KEY
    )


# --- "KSeF through iFirma": the document kinds iFirma can send to KSeF --------------------------


def test_ksef_kinds_are_the_documented_list() -> None:
    documented = {
        "fakturakraj", "fakturakraj/korekta", "fakturawysylka", "fakturazaliczka",
        "fakturakoncowa", "fakturazaliczkowawaluta", "fakturakoncowawaluta",
        "fakturaeksporttowarow", "fakturawdt", "fakturaeksportuslug", "fakturaeksportuslugue",
        "fakturawaluta", "fakturabudowa", "fakturaparagon", "fakturawyposazenie",
        "fakturasrodektrwaly", "fakturametodakasowa", "fakturaszczegolnyobowiazek", "fakturaoss",
    }  # fmt: skip
    assert set(KSEF_KINDS) == documented


# --- "Example exchange": the unwrapped GET before and after KSeF accepted it --------------------

ISSUED = {
    "Identyfikator": 1000001,
    "Numer": 1,
    "PelnyNumer": "1/11/2026",
    "DataWystawienia": "2026-11-23",
    "DataSprzedazy": "2026-11-23",
    "LiczOd": "BRT",
    "NumerKSEF": None,
    "Kontrahent": {"Nazwa": "Jan Kowalski", "OsobaFizyczna": True},
}
# 2C is the CRC-8 of the number's first 32 characters (tests/unit/vectors/test_ksef_vectors.py).
ACCEPTED = {
    **ISSUED,
    "NumerKSEF": "5260250995-20261123-0A1B2C3D4E5F-2C",
    "StatusKSEF": {"Status": "PRZYJETA_W_KSEF", "Opis": "Sukces"},
}


@responses.activate
def test_example_get_reads_the_full_number_and_no_ksef_state_yet(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/fakturakraj/1000001.json", json=ISSUED)
    document = client.get_invoice("1000001")
    assert document["PelnyNumer"] == "1/11/2026"
    assert ksef_status(document) == (None, None)


@responses.activate
def test_example_get_after_acceptance_reads_the_ksef_number(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/fakturakraj/1000001.json", json=ACCEPTED)
    assert ksef_status(client.get_invoice("1000001")) == (
        "5260250995-20261123-0A1B2C3D4E5F-2C",
        "PRZYJETA_W_KSEF",
    )

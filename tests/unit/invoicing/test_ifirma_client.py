"""iFirma client: the auth vectors, exact signed bytes, envelopes, PDF, KSeF and account calls.

How answers map to typed errors: test_ifirma_errors.py.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import responses

from invoicing.ifirma import (
    IFirmaAuthError,
    IFirmaClient,
    IFirmaError,
    IFirmaTransientError,
    IFirmaValidationError,
    auth_header,
    ksef_status,
)
from invoicing.money import dumps

BASE = "https://www.ifirma.pl/iapi"
USER = "jan.nowak@ifirma.pl"
KEY = "EAB0D8ACF3308F3B"


def digest_of(header: str) -> str:
    return header.rsplit("hmac-sha1=", 1)[1]


# ---- the worked auth examples (docs/protocols/ifirma.md), through auth_header -----------------


def test_hex_decoded_key_vector() -> None:
    # With url="" and key name "" the signed message is just the user field: "222222".
    assert digest_of(auth_header("", "222222", "", "111111")) == (
        "cec153ee6350475f117a307111e2bd7d83034925"
    )


def test_ascii_key_gives_the_faq_wrong_way_vector() -> None:
    ascii_key_as_hex = b"111111".hex()  # what you sign with if the key is NOT hex-decoded
    assert digest_of(auth_header("", "222222", "", ascii_key_as_hex)) == (
        "1558ab6c5ab2b0d1cd129b9ad11527cf33486705"
    )


@pytest.mark.parametrize(
    ("url", "key_name", "body", "expected"),
    [
        (
            f"{BASE}/fakturakraj/1337.json",
            "faktura",
            b"",
            "40600699c8f72e4165b11f98c4cb93253a3cc7dc",
        ),
        (
            f"{BASE}/faktury.json?dataOd=2026-11-01&strona=2",
            "faktura",
            b"",
            "081dec7098dbed6aab839e76501a964aa5b9386a",
        ),
        (
            f"{BASE}/fakturakraj/1337.pdf.single",
            "faktura",
            b"",
            "e87ba74ecc88097841fe48d16040aa9675c6cb9a",
        ),
        (
            f"{BASE}/fakturakraj/ksef/send/1337.json",
            "faktura",
            b'{"DataWysylki": null}',
            "0e95954ac95dec99bfa4e8386926ead26d281e5c",
        ),
        (
            f"{BASE}/abonent/miesiacksiegowy.json",
            "abonent",
            b"",
            "b52e486a2d99a010739f326214a1aed7b7fd3fb8",
        ),
        (
            f"{BASE}/abonent/miesiacksiegowy.json",
            "abonent",
            b'{"MiesiacKsiegowy": "NAST", "PrzeniesDaneZPoprzedniegoRoku": false}',
            "d6211f08ab760cf7e60133d9e31bdabbe1d3c36d",
        ),
        (
            f"{BASE}/fakturakraj/send/1337.json",
            "faktura",
            '{"Tekst": "Faktura w załączeniu"}'.encode(),
            "a77f655cf8b6b009f75854358d6dd7a4bba78aa5",
        ),
        (
            f"{BASE}/fakturakraj/send/1337.json",
            "faktura",
            json.dumps({"Tekst": "Faktura w załączeniu"}).encode(),
            "5aa44e7a9cd6e4375d2dac171934d3f7e052cfde",
        ),
    ],
)
def test_protocol_vectors(url: str, key_name: str, body: bytes, expected: str) -> None:
    header = auth_header(url, USER, key_name, KEY, body)
    assert header == f"IAPIS user={USER}, hmac-sha1={expected}"


def test_client_serialises_utf8_like_the_raw_vector() -> None:
    assert dumps({"Tekst": "Faktura w załączeniu"}) == '{"Tekst": "Faktura w załączeniu"}'.encode()


# ---- the client sends exactly what it signed ---------------------------------------------------


@pytest.fixture
def session():
    with requests.Session() as session:
        yield session


@pytest.fixture
def client(session: requests.Session) -> IFirmaClient:
    return IFirmaClient(session, user=USER, keys={"faktura": KEY, "abonent": KEY}, base_url=BASE)


def ok(**extra) -> dict:
    return {"response": {"Kod": 0, "Informacja": "OK", **extra}}


@responses.activate
def test_create_invoice_signs_the_exact_bytes_it_sends(client: IFirmaClient) -> None:
    payload = {"Uwagi": "Zamówienie z Łodzi, żółć", "Zaplacono": Decimal("123.00"), "Numer": None}
    seen = {}

    def callback(request):
        seen["body"], seen["header"] = request.body, request.headers["Authentication"]
        seen["headers"] = request.headers
        return 200, {}, json.dumps(ok(Identyfikator=1000001))

    responses.add_callback(responses.POST, f"{BASE}/fakturakraj.json", callback=callback)
    assert client.create_invoice(payload) == "1000001"
    assert isinstance(seen["body"], bytes)
    assert seen["header"] == auth_header(
        f"{BASE}/fakturakraj.json", USER, "faktura", KEY, seen["body"]
    )
    assert "Zamówienie z Łodzi, żółć".encode() in seen["body"]  # raw UTF-8, not \u escapes
    assert b'"Zaplacono": 123.00' in seen["body"]
    assert json.loads(seen["body"], parse_float=Decimal) == payload
    assert seen["headers"]["Content-Type"] == "application/json; charset=UTF-8"
    assert seen["headers"]["Accept"] == "application/json"


@responses.activate
@pytest.mark.parametrize(
    ("call", "method", "path", "body", "expected"),
    [
        (
            lambda c: c.get_invoice("1337"),
            "GET",
            "fakturakraj/1337.json",
            b"",
            "40600699c8f72e4165b11f98c4cb93253a3cc7dc",
        ),
        (
            lambda c: c.get_pdf("1337"),
            "GET",
            "fakturakraj/1337.pdf.single",
            b"",
            "e87ba74ecc88097841fe48d16040aa9675c6cb9a",
        ),
        (
            lambda c: c.send_to_ksef("1337"),
            "POST",
            "fakturakraj/ksef/send/1337.json",
            b'{"DataWysylki": null}',
            "0e95954ac95dec99bfa4e8386926ead26d281e5c",
        ),
        (
            lambda c: c.accounting_month(),
            "GET",
            "abonent/miesiacksiegowy.json",
            b"",
            "b52e486a2d99a010739f326214a1aed7b7fd3fb8",
        ),
        (
            lambda c: c.shift_accounting_month("NAST"),
            "PUT",
            "abonent/miesiacksiegowy.json",
            b'{"MiesiacKsiegowy": "NAST", "PrzeniesDaneZPoprzedniegoRoku": false}',
            "d6211f08ab760cf7e60133d9e31bdabbe1d3c36d",
        ),
        (
            lambda c: c.list_invoices(date_from=date(2026, 11, 1)),
            "GET",
            "faktury.json",
            b"",
            "081dec7098dbed6aab839e76501a964aa5b9386a",
        ),
    ],
)
def test_client_requests_match_the_protocol_vectors(
    client: IFirmaClient, call, method: str, path: str, body: bytes, expected: str
) -> None:
    seen = {}

    def callback(request):
        seen["body"], seen["header"] = request.body or b"", request.headers["Authentication"]
        if path.endswith(".pdf.single"):
            return 200, {"Content-Type": "application/pdf"}, b"%PDF-1.3 tiny"
        answer = ok(MiesiacKsiegowy=11, RokKsiegowy=2026, Wynik=[])
        return 200, {}, json.dumps(answer)

    responses.add_callback(method, f"{BASE}/{path}", callback=callback)
    call(client)
    assert seen == {"body": body, "header": f"IAPIS user={USER}, hmac-sha1={expected}"}


@responses.activate
def test_list_sends_filters_as_query_and_signs_without_it(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/faktury.json", json=ok(Wynik=[{"FakturaId": 7, "Brutto": 12.3}]))
    items = client.list_invoices(
        date_from=date(2026, 11, 1),
        date_to=date(2026, 11, 30),
        nip="5261040828",
        amount_from=Decimal("100"),
        amount_to=Decimal("123.4"),
        page=2,
        per_page=50,
    )
    request = responses.calls[0].request
    query = dict(p.split("=") for p in urlsplit(request.url).query.split("&"))
    assert query == {
        "dataOd": "2026-11-01",
        "dataDo": "2026-11-30",
        "nipKontrahenta": "5261040828",
        "kwotaOd": "100.00",
        "kwotaDo": "123.40",
        "strona": "2",
        "iloscNaStronie": "50",
    }
    bare = urlunsplit(urlsplit(request.url)._replace(query=""))
    assert request.headers["Authentication"] == auth_header(bare, USER, "faktura", KEY)
    assert items == [{"FakturaId": 7, "Brutto": Decimal("12.3")}]


@responses.activate
def test_iter_invoices_pages_until_a_short_page(client: IFirmaClient) -> None:
    pages = {"1": [{"FakturaId": 1}, {"FakturaId": 2}], "2": [{"FakturaId": 3}]}

    def callback(request):
        return 200, {}, json.dumps(ok(Wynik=pages[request.params["strona"]]))

    responses.add_callback(responses.GET, f"{BASE}/faktury.json", callback=callback)
    ids = [i["FakturaId"] for i in client.iter_invoices(date_from=date(2026, 11, 1), per_page=2)]
    assert ids == [1, 2, 3]
    assert len(responses.calls) == 2


@responses.activate
def test_iter_invoices_stops_when_the_server_ignores_paging(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/faktury.json", json=ok(Wynik=[{"FakturaId": 1}, {"FakturaId": 2}]))
    items = list(client.iter_invoices(date_from=date(2026, 11, 1), per_page=2))
    assert [i["FakturaId"] for i in items] == [1, 2]
    assert len(responses.calls) == 2


# ---- response shapes ----------------------------------------------------------------------------

INVOICE = {"Identyfikator": 1337, "PelnyNumer": "1/11/2026", "Brutto": 123.0, "Uwagi": "x"}


@responses.activate
@pytest.mark.parametrize(
    "shape",
    [
        INVOICE,
        {"response": {"Kod": 0, "Informacja": "", **INVOICE}},
        {"response": {"Kod": 0, "Informacja": "", "Wynik": INVOICE}},
    ],
    ids=["unwrapped", "wrapped", "wynik"],
)
def test_get_invoice_accepts_every_known_shape(client: IFirmaClient, shape: dict) -> None:
    responses.get(f"{BASE}/fakturakraj/1337.json", json=shape)
    invoice = client.get_invoice("1337")
    assert invoice == {**INVOICE, "Brutto": Decimal("123.0")}


@responses.activate
def test_get_invoice_by_full_number_uses_underscores(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/fakturakraj/12_11_2026.json", json=INVOICE)
    assert client.get_invoice("12/11/2026")["PelnyNumer"] == "1/11/2026"


@responses.activate
def test_get_invoice_error_envelope_raises(client: IFirmaClient) -> None:
    not_found = {"response": {"Kod": 201, "Informacja": "Nie znaleziono faktury"}}
    responses.get(f"{BASE}/fakturakraj/9.json", json=not_found)
    with pytest.raises(IFirmaValidationError, match="Nie znaleziono"):
        client.get_invoice("9")


@responses.activate
@pytest.mark.parametrize("ident", [3654778, "3654778"])
def test_identyfikator_as_int_or_string(client: IFirmaClient, ident) -> None:
    responses.post(f"{BASE}/fakturakraj.json", json=ok(Identyfikator=ident))
    assert client.create_invoice({"Numer": None}) == "3654778"


@responses.activate
def test_kod_0_without_identyfikator_is_an_unknown_outcome(client: IFirmaClient) -> None:
    responses.post(f"{BASE}/fakturakraj.json", json=ok())
    with pytest.raises(IFirmaTransientError) as info:
        client.create_invoice({"Numer": None})
    assert info.value.outcome_unknown is True


@responses.activate
def test_create_correction_posts_to_the_korekta_path(client: IFirmaClient) -> None:
    responses.post(f"{BASE}/fakturakraj/korekta/1_11_2026.json", json=ok(Identyfikator=5))
    assert client.create_correction("1/11/2026", {"PowodKorekty": "ZWR_NAB_KWOT"}) == "5"


# ---- PDF, KSeF, account -------------------------------------------------------------------------


@responses.activate
def test_get_pdf_returns_bytes_and_asks_for_pdf(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/fakturakraj/5.pdf.single", body=b"%PDF-1.4\n...%%EOF")
    assert client.get_pdf("5") == b"%PDF-1.4\n...%%EOF"
    assert responses.calls[0].request.headers["Accept"] == "application/pdf"


@responses.activate
def test_get_pdf_envelope_instead_of_pdf_raises(client: IFirmaClient) -> None:
    body = {"response": {"Kod": 500, "Informacja": "Brak uprawnień"}}
    responses.get(f"{BASE}/fakturakraj/5.pdf.single", json=body)
    with pytest.raises(IFirmaAuthError, match="Brak uprawnień"):
        client.get_pdf("5")


@responses.activate
def test_get_pdf_kod_0_without_pdf_is_an_error(client: IFirmaClient) -> None:
    responses.get(f"{BASE}/fakturakraj/5.pdf.single", json=ok())
    with pytest.raises(IFirmaError, match="did not return a PDF"):
        client.get_pdf("5")


@responses.activate
@pytest.mark.parametrize(
    "message", ["Faktura została już wysłana do KSeF", "Faktura juz wyslana do KSeF"]
)
def test_ksef_already_sent_counts_as_success(client: IFirmaClient, message: str) -> None:
    responses.post(
        f"{BASE}/fakturakraj/ksef/send/5.json",
        json={"response": {"Kod": 201, "Informacja": message}},
    )
    assert client.send_to_ksef("5") is None


@responses.activate
def test_ksef_other_kod_201_still_raises(client: IFirmaClient) -> None:
    body = {"response": {"Kod": 201, "Informacja": "Brak danych nabywcy"}}
    responses.post(f"{BASE}/fakturakraj/korekta/ksef/send/5.json", json=body)
    with pytest.raises(IFirmaValidationError, match="Brak danych"):
        client.send_to_ksef("5", kind="fakturakraj/korekta")


def test_ksef_unknown_kind_is_refused(client: IFirmaClient) -> None:
    with pytest.raises(ValueError, match="kind"):
        client.send_to_ksef("5", kind="fakturakraj/../abonent")


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        (
            {"NumerKSEF": "N-1", "StatusKSEF": {"Status": "PRZYJETA_W_KSEF"}},
            ("N-1", "PRZYJETA_W_KSEF"),
        ),
        (
            {"NumerKSeF": "N-2", "StatusKSEF": {"status": "PRZYJETA_W_KSEF"}},
            ("N-2", "PRZYJETA_W_KSEF"),
        ),
        (
            {"NumerKSEF": None, "StatusKSEF": {"Status": "WYSLANA_DO_KSEF"}},
            (None, "WYSLANA_DO_KSEF"),
        ),
        ({"PelnyNumer": "1/11/2026"}, (None, None)),
    ],
)
def test_ksef_status_reads_both_casings(invoice: dict, expected: tuple) -> None:
    assert ksef_status(invoice) == expected


@responses.activate
def test_account_calls_use_the_abonent_key(session: requests.Session) -> None:
    other = "0A0B0C0D"
    client = IFirmaClient(
        session, user=USER, keys={"faktura": KEY, "abonent": other}, base_url=BASE
    )
    responses.get(f"{BASE}/abonent/limit.json", json=ok(LimitWykorzystany=3, LimitPrzyznany=1000))
    assert client.api_limit()["LimitWykorzystany"] == 3
    header = responses.calls[0].request.headers["Authentication"]
    assert header == auth_header(f"{BASE}/abonent/limit.json", USER, "abonent", other)


@responses.activate
def test_accounting_month_is_year_month(client: IFirmaClient) -> None:
    responses.get(
        f"{BASE}/abonent/miesiacksiegowy.json", json=ok(MiesiacKsiegowy=1, RokKsiegowy=2027)
    )
    assert client.accounting_month() == (2027, 1)


def test_shift_direction_is_checked(client: IFirmaClient) -> None:
    with pytest.raises(ValueError, match="NAST"):
        client.shift_accounting_month("NEXT")  # type: ignore[arg-type]


def test_missing_key_fails_before_any_request(session: requests.Session) -> None:
    client = IFirmaClient(session, user=USER, keys={"faktura": KEY}, base_url=BASE)
    with responses.RequestsMock() as mock, pytest.raises(IFirmaAuthError, match="abonent"):
        client.api_limit()
    assert len(mock.calls) == 0


def test_non_hex_key_is_refused_at_construction(session: requests.Session) -> None:
    with pytest.raises(ValueError, match="not hex"):
        IFirmaClient(session, user=USER, keys={"faktura": "not-a-hex-key"})


@responses.activate
def test_bodies_never_reach_the_logs(
    client: IFirmaClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="invoicing.ifirma")
    answer = {"response": {"Kod": 201, "Informacja": "Kontrahent.Nazwa: Jan Tajny"}}
    responses.post(f"{BASE}/fakturakraj.json", json=answer)
    with pytest.raises(IFirmaValidationError):
        client.create_invoice({"Kontrahent": {"Nazwa": "Jan Tajny", "Email": "jan@tajny.pl"}})
    assert caplog.records, "the call itself should be logged"
    assert "Tajny" not in caplog.text
    assert "tajny.pl" not in caplog.text

"""Fake iFirma: auth, validation, numbering, list, PDF, KSeF, faults; then the real client over HTTP."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.ifirma import create_app, start_in_thread
from emulators.ifirma_rules import hmac_sha1_hex
from invoicing.correction import build_correction
from invoicing.ifirma import IFirmaClient, IFirmaTransientError, auth_header, ksef_status
from invoicing.money import dumps
from invoicing.payload import InvoiceLine, build_invoice, matches_marker

USER = "demo@example.pl"
KEY = "EAB0D8ACF3308F3B"
KEYS = {"faktura": KEY, "abonent": KEY}
LOCAL = "http://localhost"
KSEF_NUMBER = re.compile(r"^(\d{10})-(\d{8})-([0-9A-F]{12})-([0-9A-F]{2})$")


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS straight from the spec: poly 0x07, init 0, MSB first, no final XOR."""
    crc = 0
    for byte in data:
        for bit in range(7, -1, -1):
            top = (crc >> 7) ^ ((byte >> bit) & 1)
            crc = ((crc << 1) & 0xFF) ^ (0x07 if top else 0)
    return crc


def invoice_body(day: str = "2026-11-23", sale: str | None = None, **changes) -> dict:
    body = {
        "Zaplacono": Decimal("123.00"),
        "ZaplaconoNaDokumencie": Decimal("123.00"),
        "LiczOd": "BRT",
        "DataWystawienia": day,
        "DataSprzedazy": sale or day,
        "FormatDatySprzedazy": "DZN",
        "TerminPlatnosci": sale or day,
        "SposobZaplaty": "ELE",
        "RodzajPodpisuOdbiorcy": "BPO",
        "WidocznyNumerGios": False,
        "Numer": None,
        "Uwagi": "Zamówienie ORD-1042, płatność PAY-7f3a",
        "Pozycje": [
            {
                "StawkaVat": Decimal("0.23"),
                "Ilosc": 1,
                "CenaJednostkowa": Decimal("123.00"),
                "NazwaPelna": "Subskrypcja listopad",
                "Jednostka": "szt",
                "TypStawkiVat": "PRC",
            }
        ],
        "Kontrahent": {
            "Nazwa": "Jan Kowalski",
            "Identyfikator": None,
            "KodPocztowy": "00-001",
            "Miejscowosc": "Warszawa",
            "OsobaFizyczna": True,
            "Email": "jan@example.pl",
        },
    }
    body.update(changes)
    return body


@pytest.fixture
def app():
    return create_app(user=USER, keys=KEYS, accounting_month=(2026, 11), ksef_delay_gets=1)


@pytest.fixture
def client(app):
    return app.test_client()


def call(
    client,
    method: str,
    path: str,
    body=None,
    *,
    key_name: str = "faktura",
    raw=None,
    header=None,
    query: str = "",
):
    data = raw if raw is not None else (dumps(body) if body is not None else b"")
    auth = header or auth_header(f"{LOCAL}/iapi/{path}", USER, key_name, KEY, data)
    headers = {"Authentication": auth, "Content-Type": "application/json; charset=UTF-8"}
    url = f"/iapi/{path}" + (f"?{query}" if query else "")
    return client.open(url, method=method, data=data, headers=headers)


def kod(resp) -> tuple[int, str]:
    inner = resp.get_json()["response"]
    return inner["Kod"], inner["Informacja"]


def create(client, **changes) -> int:
    resp = call(client, "POST", "fakturakraj.json", invoice_body(**changes))
    assert kod(resp)[0] == 0, kod(resp)
    return resp.get_json()["response"]["Identyfikator"]


def fault(client, **spec) -> None:
    assert client.post("/__emulator__/faults", json=spec).status_code == 200


# ---- auth ---------------------------------------------------------------------------------------


def test_hand_rolled_hmac_matches_the_library_and_the_vector() -> None:
    assert hmac_sha1_hex(bytes.fromhex("111111"), b"222222") == (
        "cec153ee6350475f117a307111e2bd7d83034925"
    )
    long_key = bytes(range(100))  # longer than the SHA-1 block: hashed first
    assert hmac_sha1_hex(long_key, b"x") == hmac.new(long_key, b"x", hashlib.sha1).hexdigest()


def test_good_signature_is_accepted(client) -> None:
    resp = call(client, "POST", "fakturakraj.json", invoice_body())
    assert resp.status_code == 200
    assert resp.get_json() == {
        "response": {
            "Kod": 0,
            "Informacja": "Faktura została pomyślnie dodana.",
            "Identyfikator": 1000001,
        }
    }


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"IAPIS user={USER}, hmac-sha1={'0' * 40}", 403),
        ("", 400),
        ("Bearer abc", 400),
        (f"IAPIS user=obcy@example.pl, hmac-sha1={'0' * 40}", 401),
    ],
)
def test_bad_auth_is_refused_with_http_200(client, header: str, expected: int) -> None:
    resp = call(client, "POST", "fakturakraj.json", invoice_body(), header=header or " ")
    assert (resp.status_code, kod(resp)[0]) == (200, expected)
    assert client.get("/__emulator__/state").get_json()["counts"]["invoices"] == 0


def test_signature_covers_the_body_bytes(client) -> None:
    signed = dumps(invoice_body())
    header = auth_header(f"{LOCAL}/iapi/fakturakraj.json", USER, "faktura", KEY, signed)
    reformatted = json.dumps(json.loads(signed)).encode()  # same JSON, different bytes
    resp = call(client, "POST", "fakturakraj.json", raw=reformatted, header=header)
    assert kod(resp) == (403, "Niepoprawny hash bądź kod wiadomości")


def test_query_string_is_not_signed(client) -> None:
    resp = call(client, "GET", "faktury.json", query="dataOd=2026-11-01")
    assert kod(resp)[0] == 0


def test_abonent_routes_need_the_abonent_key(client) -> None:
    assert kod(call(client, "GET", "abonent/limit.json", key_name="faktura"))[0] == 403
    assert kod(call(client, "GET", "abonent/limit.json", key_name="abonent"))[0] == 0


def test_public_base_url_mode_checks_the_live_url() -> None:
    jan = "jan.nowak@ifirma.pl"
    app = create_app(user=jan, keys=KEYS, public_base_url="https://www.ifirma.pl/iapi")
    client = app.test_client()
    live = f"IAPIS user={jan}, hmac-sha1=40600699c8f72e4165b11f98c4cb93253a3cc7dc"  # worked auth example
    resp = call(client, "GET", "fakturakraj/1337.json", header=live)
    assert kod(resp) == (201, "Nie znaleziono faktury")  # authenticated, just absent
    local = auth_header(f"{LOCAL}/iapi/fakturakraj/1337.json", jan, "faktura", KEY)
    assert kod(call(client, "GET", "fakturakraj/1337.json", header=local))[0] == 403


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        (b"\xff\xfe{}", "application/json", 101),
        (b"{not json", "application/json", 200),
        (b"[1, 2]", "application/json", 200),
        (b"{}", "text/plain", 102),
    ],
)
def test_body_encoding_and_type_errors(
    client, raw: bytes, content_type: str, expected: int
) -> None:
    auth = auth_header(f"{LOCAL}/iapi/fakturakraj.json", USER, "faktura", KEY, raw)
    resp = client.post(
        "/iapi/fakturakraj.json",
        data=raw,
        headers={"Authentication": auth, "Content-Type": content_type},
    )
    assert kod(resp)[0] == expected


# ---- validation ---------------------------------------------------------------------------------


def rejected(client, body: dict) -> str:
    code, info = kod(call(client, "POST", "fakturakraj.json", body))
    assert code == 201, info
    return info


def test_missing_required_fields_are_listed(client) -> None:
    body = invoice_body()
    for field in ("RodzajPodpisuOdbiorcy", "Numer", "Zaplacono"):
        del body[field]
    del body["Kontrahent"]["Miejscowosc"]
    info = rejected(client, body)
    for field in ("RodzajPodpisuOdbiorcy", "Numer", "Zaplacono", "Kontrahent.Miejscowosc"):
        assert field in info


def test_bad_vat_rate_and_type(client) -> None:
    body = invoice_body()
    body["Pozycje"] = [
        dict(body["Pozycje"][0], StawkaVat=Decimal("0.22")),
        dict(body["Pozycje"][0], TypStawkiVat="NP", StawkaVat=None),
    ]
    info = rejected(client, body)
    assert "Pozycje[0].StawkaVat" in info
    assert "Pozycje[1].TypStawkiVat" in info


def test_exempt_needs_a_legal_basis(client) -> None:
    item = dict(invoice_body()["Pozycje"][0], StawkaVat=None, TypStawkiVat="ZW")
    assert "Pozycje[0].PodstawaPrawna" in rejected(client, invoice_body(Pozycje=[item]))
    assert create(client, Pozycje=[dict(item, PodstawaPrawna="Art. 113 ust. 1")]) == 1000001


@pytest.mark.parametrize(
    ("issue", "sale", "field", "text"),
    [
        ("2026-11-22", "2026-11-23", "DataWystawienia", "DataSprzedazy"),
        ("2026-12-16", "2026-11-23", "DataWystawienia", "2026-12-15"),
        ("2026-10-31", "2026-10-31", "DataSprzedazy", "miesiąca księgowego"),
        ("23.11.2026", "2026-11-23", "DataWystawienia", "RRRR-MM-DD"),
    ],
)
def test_date_rules(client, issue: str, sale: str, field: str, text: str) -> None:
    info = rejected(client, invoice_body(day=issue, sale=sale))
    assert field in info
    assert text in info


def test_issue_date_cannot_go_before_the_previous_invoice(client) -> None:
    create(client, day="2026-11-25")
    assert "poprzedniej faktury" in rejected(client, invoice_body(day="2026-11-24"))


def test_paid_cannot_exceed_the_gross(client) -> None:
    assert "Zaplacono" in rejected(client, invoice_body(Zaplacono=Decimal("123.01")))


def test_unknown_fields_are_a_structure_error(client) -> None:
    resp = call(client, "POST", "fakturakraj.json", invoice_body(UwagiNaFakturze="x"))
    assert kod(resp)[0] == 200
    assert "UwagiNaFakturze" in kod(resp)[1]


# ---- numbering, GET, list, PDF --------------------------------------------------------------------


def test_numbering_restarts_with_the_issue_month(client) -> None:
    assert create(client, day="2026-11-23") == 1000001
    assert create(client, day="2026-11-24") == 1000002
    assert create(client, day="2026-12-01", sale="2026-11-30") == 1000003
    numbers = [i["number"] for i in client.get("/__emulator__/state").get_json()["invoices"]]
    assert numbers == ["1/11/2026", "2/11/2026", "1/12/2026"]
    got = call(client, "GET", "fakturakraj/2_11_2026.json").get_json()
    assert (got["Identyfikator"], got["Numer"], got["PelnyNumer"]) == (1000002, 2, "2/11/2026")


def test_get_returns_the_invoice_unwrapped_or_wrapped(client) -> None:
    ident = create(client)
    plain = call(client, "GET", f"fakturakraj/{ident}.json").get_json()
    assert (plain["PelnyNumer"], plain["Brutto"], plain["Netto"], plain["NumerKSEF"]) == (
        "1/11/2026",
        123.0,
        100.0,
        None,
    )
    assert plain["Uwagi"] == "Zamówienie ORD-1042, płatność PAY-7f3a"
    assert "StatusKSEF" not in plain
    fault(client, mode="wrap_get", enabled=True)
    wrapped = call(client, "GET", f"fakturakraj/{ident}.json").get_json()
    assert wrapped["response"]["Kod"] == 0
    assert wrapped["response"]["PelnyNumer"] == "1/11/2026"


def test_get_unknown_invoice(client) -> None:
    assert kod(call(client, "GET", "fakturakraj/42.json")) == (201, "Nie znaleziono faktury")


def test_list_filters_and_pages_without_uwagi(client) -> None:
    company = dict(invoice_body()["Kontrahent"], NIP="5261040828", OsobaFizyczna=False)
    create(client, day="2026-11-20")
    create(client, day="2026-11-21", Kontrahent=company)
    create(
        client,
        day="2026-11-22",
        Zaplacono=Decimal("50.00"),
        Pozycje=[dict(invoice_body()["Pozycje"][0], CenaJednostkowa=Decimal("50.00"))],
        ZaplaconoNaDokumencie=Decimal("50.00"),
    )

    def ids(query: str) -> list[int]:
        resp = call(client, "GET", "faktury.json", query=query)
        assert kod(resp)[0] == 0
        items = resp.get_json()["response"]["Wynik"]
        assert all("Uwagi" not in i for i in items)
        return [i["FakturaId"] for i in items]

    assert ids("dataOd=2026-11-01") == [1000001, 1000002, 1000003]
    assert ids("dataOd=2026-11-21&dataDo=2026-11-21") == [1000002]
    assert ids("dataOd=2026-11-01&nipKontrahenta=5261040828") == [1000002]
    assert ids("dataOd=2026-11-01&kwotaOd=100&kwotaDo=123.00") == [1000001, 1000002]
    assert ids("dataOd=2026-11-01&iloscNaStronie=2&strona=2") == [1000003]
    assert ids("dataOd=2026-10-01") == []  # default dataDo = dataOd + 30 days
    assert kod(call(client, "GET", "faktury.json", query="dataDo=2026-11-30"))[0] == 201


def test_pdf_is_a_real_pdf_with_the_number(client) -> None:
    ident = create(client)
    resp = call(client, "GET", f"fakturakraj/{ident}.pdf.single")
    pdf = resp.data
    assert resp.mimetype == "application/pdf"
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    xref_at = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[xref_at:].startswith(b"xref")  # the trailer points at a real xref table
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    text = b"".join(zlib.decompress(s) for s in streams)
    assert b"1/11/2026" in text
    assert b"Zamowienie ORD-1042, platnosc PAY-7f3a" in text  # transliterated for core fonts


# ---- KSeF -----------------------------------------------------------------------------------------


def test_ksef_lifecycle_and_number_shape(client) -> None:
    ident = create(client)
    path = f"fakturakraj/ksef/send/{ident}.json"
    assert kod(call(client, "POST", path, {"DataWysylki": None})) == (0, "Wysłano.")
    first = call(client, "GET", f"fakturakraj/{ident}.json").get_json()
    assert ksef_status(first) == (None, "WYSLANA_DO_KSEF")
    second = call(client, "GET", f"fakturakraj/{ident}.json").get_json()
    number, status = ksef_status(second)
    assert status == "PRZYJETA_W_KSEF"
    nip, day, _, check = KSEF_NUMBER.fullmatch(number).groups()
    assert (nip, len(number)) == ("5260250995", 35)
    assert datetime.strptime(day, "%Y%m%d").date() == datetime.now(ZoneInfo("Europe/Warsaw")).date()
    assert int(check, 16) == crc8(number[:32].encode())
    again = call(client, "POST", path, {"DataWysylki": None})
    assert kod(again) == (201, "Faktura została już wysłana do KSeF")


def test_ksef_reject_fault(client) -> None:
    ident = create(client)
    fault(client, mode="ksef_reject", opis="Błąd schematu")
    call(client, "POST", f"fakturakraj/ksef/send/{ident}.json", {"DataWysylki": None})
    call(client, "GET", f"fakturakraj/{ident}.json")
    got = call(client, "GET", f"fakturakraj/{ident}.json").get_json()
    assert got["StatusKSEF"] == {"Status": "ODRZUCONA_PRZEZ_KSEF", "Opis": "Błąd schematu"}
    assert got["NumerKSEF"] is None


# ---- corrections, payments, e-mail, account ---------------------------------------------------------


def test_correction_from_the_builder_is_accepted(client) -> None:
    built = build_invoice(
        order_id="o-1",
        lines=[InvoiceLine("Plan", 2, 6150, "23")],
        gross_minor=12300,
        currency="PLN",
        paid_at=datetime(2026, 11, 23, 9, tzinfo=UTC),
        buyer={"name": "Jan", "postal_code": "00-001", "city": "Warszawa", "country": "PL"},
        payment_ref="p",
        provider="stripe",
        issue_date=date(2026, 11, 23),
    )
    ident = create(client, **built.payload)
    corr = build_correction(
        original_payload=built.payload,
        order_id="o-1",
        refund_ref="re_1",
        refund_minor=12300,
        refunded_at=datetime(2026, 11, 24, tzinfo=UTC),
        issue_date=date(2026, 11, 24),
    )
    resp = call(client, "POST", f"fakturakraj/korekta/{ident}.json", corr.payload)
    assert kod(resp)[0] == 0
    docs = client.get("/__emulator__/state").get_json()["invoices"]
    assert (docs[1]["kind"], docs[1]["number"], docs[1]["gross"], docs[1]["original"]) == (
        "korekta",
        "1/11/2026/K",
        "0.00",
        ident,
    )
    bad = dict(corr.payload, PowodKorekty="BO_TAK", DataWystawienia="2026-11-01")
    info = kod(call(client, "POST", f"fakturakraj/korekta/{ident}.json", bad))[1]
    assert "PowodKorekty" in info
    assert "DataWystawienia" in info


def test_payment_and_email_routes(client) -> None:
    ident = create(client, Zaplacono=Decimal("0.00"))
    pay = f"faktury/wplaty/prz_faktura_kraj/{ident}.json"
    assert kod(call(client, "POST", pay, {"Kwota": Decimal("200.00")}))[0] == 201
    assert kod(call(client, "POST", pay, {"Kwota": Decimal("123.00")}))[0] == 0
    assert (
        kod(call(client, "POST", f"fakturakraj/send/{ident}.json", {"Tekst": "W załączeniu"}))[0]
        == 0
    )
    state = client.get("/__emulator__/state").get_json()
    assert state["invoices"][0]["paid"] == "123.00"
    assert state["outbox"] == [{"id": ident, "number": "1/11/2026", "recipient": "jan@example.pl"}]


def test_accounting_month_get_put_and_limit(client) -> None:
    get = lambda: call(client, "GET", "abonent/miesiacksiegowy.json", key_name="abonent")  # noqa: E731
    assert get().get_json()["response"] | {"Informacja": ""} == {
        "Kod": 0,
        "Informacja": "",
        "MiesiacKsiegowy": 11,
        "RokKsiegowy": 2026,
    }
    body = {"MiesiacKsiegowy": "NAST", "PrzeniesDaneZPoprzedniegoRoku": False}
    for _ in range(2):
        call(client, "PUT", "abonent/miesiacksiegowy.json", body, key_name="abonent")
    assert (
        get().get_json()["response"]["MiesiacKsiegowy"],
        get().get_json()["response"]["RokKsiegowy"],
    ) == (1, 2027)
    limit = call(client, "GET", "abonent/limit.json", key_name="abonent").get_json()["response"]
    assert (limit["LimitWykorzystany"], limit["LimitPrzyznany"]) == (0, 1000)


# ---- faults ---------------------------------------------------------------------------------------


def test_fail_n_answers_500_before_storing(client) -> None:
    fault(client, mode="fail_n", n=2, route="fakturakraj.json")
    statuses = [
        call(client, "POST", "fakturakraj.json", invoice_body()).status_code for _ in range(3)
    ]
    assert statuses == [500, 500, 200]
    assert client.get("/__emulator__/state").get_json()["counts"]["invoices"] == 1


def test_kod_201_fault_then_normal(client) -> None:
    fault(client, mode="kod_201", message="Data sprzedaży spoza miesiąca")
    assert kod(call(client, "POST", "fakturakraj.json", invoice_body())) == (
        201,
        "Data sprzedaży spoza miesiąca",
    )
    assert kod(call(client, "POST", "fakturakraj.json", invoice_body()))[0] == 0


def test_error_after_create_stores_then_fails(client) -> None:
    fault(client, mode="error_after_create")
    assert call(client, "POST", "fakturakraj.json", invoice_body()).status_code == 500
    assert client.get("/__emulator__/state").get_json()["counts"]["invoices"] == 1


def test_rate_limit_and_reset(client) -> None:
    fault(client, mode="rate_limit", per_minute=2)
    codes = [call(client, "GET", "fakturakraj/1.json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    fault(client, mode="reset")
    assert call(client, "GET", "fakturakraj/1.json").status_code == 200


def test_unknown_fault_mode_is_a_400(client) -> None:
    assert client.post("/__emulator__/faults", json={"mode": "explode"}).status_code == 400


def test_reset_state_forgets_documents(client) -> None:
    create(client)
    fault(client, mode="reset_state")
    assert client.get("/__emulator__/state").get_json()["counts"]["invoices"] == 0
    assert create(client) == 1000001


@settings(max_examples=40, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 9), st.integers(1, 500_000), st.sampled_from(["23", "8", "5", "0", "zw"])
        ),
        min_size=1,
        max_size=6,
    )
)
def test_builder_payloads_are_accepted_with_the_same_totals(specs) -> None:
    client = create_app(user=USER, keys=KEYS, accounting_month=(2026, 11)).test_client()
    lines = [InvoiceLine(f"Poz {i}", q, p, r) for i, (q, p, r) in enumerate(specs)]
    gross = sum(ln.gross_minor for ln in lines)
    built = build_invoice(
        order_id="o",
        lines=lines,
        gross_minor=gross,
        currency="PLN",
        paid_at=datetime(2026, 11, 5, tzinfo=UTC),
        buyer={"name": "A", "postal_code": "00-001", "city": "B"},
        payment_ref="p",
        provider="paynow",
        issue_date=date(2026, 11, 5),
    )
    ident = create(client, **copy.deepcopy(built.payload))
    got = call(client, "GET", f"fakturakraj/{ident}.json").get_json()
    assert Decimal(str(got["Brutto"])) * 100 == gross
    net = sum(t.net_minor for t in built.totals.values())
    assert Decimal(str(got["Netto"])) * 100 == net


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.dictionaries(
        st.sampled_from([*invoice_body(), "Kontrahent", "Pozycje", "Rabat"]),
        JSON_VALUES,
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from([*invoice_body()["Pozycje"][0], "Rabat", "PodstawaPrawna"]),
        JSON_VALUES,
        max_size=3,
    ),
)
def test_garbage_fields_get_an_envelope_never_a_crash(header: dict, item: dict) -> None:
    client = create_app(user=USER, keys=KEYS, accounting_month=(2026, 11)).test_client()
    body = invoice_body(**header)
    if (
        isinstance(body["Pozycje"], list)
        and body["Pozycje"]
        and isinstance(body["Pozycje"][0], dict)
    ):
        body["Pozycje"][0].update(item)
    resp = call(client, "POST", "fakturakraj.json", body)
    assert resp.status_code == 200
    assert kod(resp)[0] in (0, 200, 201)


# ---- the real client over real HTTP ------------------------------------------------------------------


@pytest.fixture
def live():
    server, base = start_in_thread(user=USER, keys=KEYS, ksef_delay_gets=1)
    with requests.Session() as session:
        yield IFirmaClient(session, user=USER, keys=KEYS, base_url=base, timeout=(2.0, 5.0)), base
    server.shutdown()
    server.server_close()


def todays_invoice(order_id: str):
    now = datetime.now(UTC)
    return build_invoice(
        order_id=order_id,
        lines=[InvoiceLine("Subskrypcja", 1, 12300, "23")],
        gross_minor=12300,
        currency="PLN",
        paid_at=now,
        buyer={
            "name": "Łucja Żak",
            "email": "l@example.pl",
            "line1": "Prosta 1",
            "postal_code": "00-001",
            "city": "Łódź",
            "country": "PL",
        },
        payment_ref="PAY-1",
        provider="paynow",
        issue_date=now.astimezone(ZoneInfo("Europe/Warsaw")).date(),
    )


def test_end_to_end_invoice_pdf_and_ksef(live) -> None:
    client, _ = live
    built = todays_invoice("ord-e2e")
    ident = client.create_invoice(built.payload)
    invoice = client.get_invoice(ident)
    month = built.issue_date
    assert invoice["PelnyNumer"] == f"1/{month.month}/{month.year}"
    assert invoice["Brutto"] == Decimal("123.0")
    assert matches_marker(invoice, "ord-e2e")
    assert client.get_pdf(ident).startswith(b"%PDF-")
    client.send_to_ksef(ident)
    client.send_to_ksef(ident)  # "już wysłana" is success
    assert ksef_status(client.get_invoice(ident))[1] == "WYSLANA_DO_KSEF"
    number, status = ksef_status(client.get_invoice(ident))
    assert status == "PRZYJETA_W_KSEF"
    assert int(number[-2:], 16) == crc8(number[:32].encode())
    assert client.accounting_month() == (month.year, month.month)
    assert client.api_limit()["LimitWykorzystany"] == 1


def test_lost_response_is_an_unknown_outcome_and_reconciles(live) -> None:
    client, base = live
    requests.post(
        base.replace("/iapi", "/__emulator__/faults"), json={"mode": "lose_response"}, timeout=5
    ).raise_for_status()
    built = todays_invoice("ord-lost")
    with pytest.raises(IFirmaTransientError) as caught:
        client.create_invoice(built.payload)
    assert caught.value.outcome_unknown is True
    state = requests.get(base.replace("/iapi", "/__emulator__/state"), timeout=5).json()
    assert [i["uwagi"] for i in state["invoices"]] == [built.payload["Uwagi"]]
    day = built.issue_date
    candidates = list(
        client.iter_invoices(
            date_from=day, date_to=day, amount_from=Decimal("123"), amount_to=Decimal("123")
        )
    )
    found = [
        c for c in candidates if matches_marker(client.get_invoice(str(c["FakturaId"])), "ord-lost")
    ]
    assert [c["FakturaId"] for c in found] == [state["invoices"][0]["id"]]


def test_slow_answer_after_commit_is_a_read_timeout(live) -> None:
    _, base = live
    requests.post(
        base.replace("/iapi", "/__emulator__/faults"),
        json={"mode": "timeout_after_commit", "seconds": 1.0},
        timeout=5,
    ).raise_for_status()
    with requests.Session() as session:
        slow = IFirmaClient(session, user=USER, keys=KEYS, base_url=base, timeout=(2.0, 0.3))
        with pytest.raises(IFirmaTransientError) as caught:
            slow.create_invoice(todays_invoice("ord-slow").payload)
    assert caught.value.outcome_unknown is True
    assert isinstance(caught.value.__cause__, requests.ReadTimeout)
    state = requests.get(base.replace("/iapi", "/__emulator__/state"), timeout=5).json()
    assert state["counts"]["invoices"] == 1


def test_default_date_window_is_thirty_days(client) -> None:
    create(client, day="2026-11-23")
    start = (date(2026, 11, 23) - timedelta(days=30)).isoformat()
    resp = call(client, "GET", "faktury.json", query=f"dataOd={start}")
    items = resp.get_json()["response"]["Wynik"]
    assert [i["FakturaId"] for i in items] == [1000001]


def test_concurrent_creates_get_unique_ids_and_numbers(live) -> None:
    _, base = live

    def one(i: int) -> str:
        with requests.Session() as session:
            c = IFirmaClient(session, user=USER, keys=KEYS, base_url=base, timeout=(2.0, 10.0))
            return c.create_invoice(todays_invoice(f"ord-{i}").payload)

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(one, range(24)))
    assert len(set(ids)) == 24
    state = requests.get(base.replace("/iapi", "/__emulator__/state"), timeout=5).json()
    seqs = sorted(int(i["number"].split("/")[0]) for i in state["invoices"])
    assert seqs == list(range(1, 25))

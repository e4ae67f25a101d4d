"""How iFirma answers and transport failures become typed errors (invoicing/ifirma_errors.py)."""

from __future__ import annotations

import http.client
import socket

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from invoicing.ifirma import IFirmaClient
from invoicing.ifirma_errors import (
    IFirmaAuthError,
    IFirmaError,
    IFirmaRateLimitError,
    IFirmaTransientError,
    IFirmaValidationError,
    error_for_kod,
    is_already_sent,
    never_sent,
)

BASE = "https://www.ifirma.pl/iapi"
USER = "jan.nowak@ifirma.pl"
KEY = "EAB0D8ACF3308F3B"


@pytest.fixture
def session():
    with requests.Session() as session:
        yield session


@pytest.fixture
def client(session: requests.Session) -> IFirmaClient:
    return IFirmaClient(session, user=USER, keys={"faktura": KEY}, base_url=BASE)


# ---- the mapping itself ------------------------------------------------------------------------


def test_error_for_kod_keeps_kod_message_and_status() -> None:
    error = error_for_kod(201, "Błędy walidacji", 200)
    assert type(error) is IFirmaValidationError
    assert (error.kod, error.message, error.http_status) == (201, "Błędy walidacji", 200)
    assert str(error) == "iFirma Kod 201: Błędy walidacji"
    transient = error_for_kod(100, "Błąd techniczny", 500)
    assert isinstance(transient, IFirmaTransientError)
    assert transient.outcome_unknown is True


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Faktura została już wysłana do KSeF", True),
        ("Faktura zostala juz wyslana do KSeF", True),
        ("Invoice already sent", True),
        ("Data sprzedaży spoza ustawionego miesiąca księgowego", False),
    ],
)
def test_is_already_sent_ignores_diacritics(message: str, expected: bool) -> None:
    assert is_already_sent(message) is expected


def test_never_sent_looks_through_wrapped_causes() -> None:
    assert never_sent(requests.ConnectTimeout("connect timed out")) is True
    assert never_sent(requests.ReadTimeout("read timed out")) is False
    # requests wraps urllib3, which wraps the socket error: the refusal is two levels down.
    refused = requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "no")))
    assert never_sent(refused) is True


# ---- through the client ------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("kod", "error"),
    [
        (101, IFirmaValidationError),
        (102, IFirmaValidationError),
        (200, IFirmaValidationError),
        (201, IFirmaValidationError),
        (202, IFirmaValidationError),
        (400, IFirmaAuthError),
        (401, IFirmaAuthError),
        (402, IFirmaAuthError),
        (403, IFirmaAuthError),
        (499, IFirmaAuthError),
        (500, IFirmaAuthError),
        (100, IFirmaTransientError),
    ],
)
def test_http_200_with_nonzero_kod_is_a_typed_error(client: IFirmaClient, kod: int, error) -> None:
    info = f"Informacja dla kodu {kod}"
    responses.post(f"{BASE}/fakturakraj.json", json={"response": {"Kod": kod, "Informacja": info}})
    with pytest.raises(error) as caught:
        client.create_invoice({"Numer": None})
    assert (caught.value.kod, caught.value.message, caught.value.http_status) == (kod, info, 200)
    if error is IFirmaTransientError:
        assert caught.value.outcome_unknown is True


@responses.activate
def test_unknown_kod_is_a_plain_ifirma_error(client: IFirmaClient) -> None:
    responses.post(f"{BASE}/fakturakraj.json", json={"response": {"Kod": 777, "Informacja": "?"}})
    with pytest.raises(IFirmaError) as caught:
        client.create_invoice({})
    assert type(caught.value) is IFirmaError
    assert caught.value.kod == 777


@responses.activate
@pytest.mark.parametrize("status", [401, 403])
def test_http_401_403_are_auth_errors(client: IFirmaClient, status: int) -> None:
    responses.get(f"{BASE}/fakturakraj/1.json", status=status, body="forbidden")
    with pytest.raises(IFirmaAuthError) as caught:
        client.get_invoice("1")
    assert caught.value.http_status == status


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_is_transient_with_unknown_outcome(client: IFirmaClient, status: int) -> None:
    responses.post(f"{BASE}/fakturakraj.json", status=status, body="<html>oops</html>")
    with pytest.raises(IFirmaTransientError) as caught:
        client.create_invoice({})
    assert (caught.value.outcome_unknown, caught.value.http_status) == (True, status)


@responses.activate
def test_http_429_is_a_rate_limit_error(client: IFirmaClient) -> None:
    responses.post(f"{BASE}/fakturakraj.json", status=429, headers={"Retry-After": "30"})
    with pytest.raises(IFirmaRateLimitError) as caught:
        client.create_invoice({})
    assert (caught.value.http_status, caught.value.retry_after) == (429, 30.0)


@responses.activate
def test_invalid_json_on_http_200_is_transient(client: IFirmaClient) -> None:
    responses.post(f"{BASE}/fakturakraj.json", body="<html>proxy</html>")
    with pytest.raises(IFirmaTransientError) as caught:
        client.create_invoice({})
    assert caught.value.outcome_unknown is True


@responses.activate
def test_read_timeout_means_outcome_unknown(client: IFirmaClient) -> None:
    responses.post(f"{BASE}/fakturakraj.json", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(IFirmaTransientError) as caught:
        client.create_invoice({})
    assert caught.value.outcome_unknown is True


@responses.activate
def test_reset_after_sending_means_outcome_unknown(client: IFirmaClient) -> None:
    dropped = ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    responses.post(f"{BASE}/fakturakraj.json", body=requests.ConnectionError(dropped))
    with pytest.raises(IFirmaTransientError) as caught:
        client.create_invoice({})
    assert caught.value.outcome_unknown is True


@responses.activate
def test_connect_timeout_means_not_sent(client: IFirmaClient) -> None:
    responses.post(f"{BASE}/fakturakraj.json", body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(IFirmaTransientError) as caught:
        client.create_invoice({})
    assert caught.value.outcome_unknown is False


def test_refused_connection_means_not_sent(session: requests.Session) -> None:
    with socket.socket() as probe:  # a port that was just free is (almost surely) closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = IFirmaClient(
        session, user=USER, keys={"faktura": KEY}, base_url=f"http://127.0.0.1:{port}/iapi"
    )
    with pytest.raises(IFirmaTransientError) as caught:
        closed.create_invoice({"Numer": None})
    assert caught.value.outcome_unknown is False

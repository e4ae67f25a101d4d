"""Provider HTTP sessions honour the operator's proxy and CA settings, read once at start."""

import pytest

from service.http import http_session


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_proxy_from_the_environment_is_used(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = http_session("https://www.ifirma.pl/iapi")
    assert session.proxies["https"] == "http://proxy.internal:3128"
    # Settled once: the environment is not consulted again on every request.
    assert session.trust_env is False


def test_no_proxy_exempts_the_api_host(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.paynow.pl")
    assert http_session("https://api.paynow.pl").proxies == {}
    assert http_session("https://www.ifirma.pl/iapi").proxies["https"]


def test_custom_ca_bundle_is_kept(monkeypatch, tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert http_session("https://www.ifirma.pl/iapi").verify == str(bundle)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    assert http_session("https://www.ifirma.pl/iapi").verify is True

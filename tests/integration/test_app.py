"""The app factory: health, readiness, problem+json for every error, body limit, OpenAPI."""

import io
import logging

import pytest

from service.app import create_app
from tests.support import assert_problem, make_settings


def test_healthz(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_the_database(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == "ok"


def test_readyz_reports_unreachable_redis(db_url, tmp_path) -> None:
    app = create_app(make_settings(db_url, tmp_path, redis_url="redis://127.0.0.1:1/3"))
    try:
        body = assert_problem(app.test_client().get("/readyz"), 503)
    finally:
        app.extensions["kwit"].close()
    assert "redis" in body["detail"]
    assert body["checks"]["database"] == "ok"


def test_readyz_reports_unreachable_database(tmp_path) -> None:
    app = create_app(make_settings("postgresql://nobody@127.0.0.1:1/none", tmp_path))
    try:
        body = assert_problem(app.test_client().get("/readyz"), 503)
    finally:
        app.extensions["kwit"].close()
    assert body["checks"]["database"].startswith("unavailable")


def test_unknown_path_is_problem_json(client) -> None:
    assert_problem(client.get("/no/such/thing"), 404)


def test_wrong_method_is_problem_json_with_allow(client) -> None:
    response = client.delete("/healthz")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_body_over_one_mebibyte_is_413(client) -> None:
    response = client.post(
        "/webhooks/stripe", data=b"x" * (1024 * 1024 + 1), content_type="application/json"
    )
    assert_problem(response, 413)


def chunked(client, path: str, body: bytes, **headers: str):  # type: ignore[no-untyped-def]
    """POST `body` as a chunked request: no Content-Length, as a streaming client sends it."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json", **headers},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("path", ["/webhooks/stripe", "/webhooks/paynow", "/v1/orders"])
def test_chunked_body_over_one_mebibyte_is_413(client, path: str) -> None:
    body = b'{"a":"' + b"x" * (1024 * 1024) + b'"}'
    assert_problem(chunked(client, path, body, **{"Stripe-Signature": "t=1,v1=00"}), 413)


def test_a_small_chunked_body_reaches_the_view_whole(client) -> None:
    body = b'{"id": "evt_1", "type": "ping"}'
    response = chunked(client, "/webhooks/stripe", body, **{"Stripe-Signature": "t=1,v1=00"})
    assert assert_problem(response, 400)["reason"] == "mismatch"  # read, then verified


def test_unhandled_exception_is_500_without_trace(app, caplog) -> None:
    def explode():
        raise RuntimeError("secret internals")

    app.add_url_rule("/explode", "explode", explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/explode")
    body = assert_problem(response, 500)
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["request_id"]


def test_request_id_is_echoed_and_logged(client) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    generated = client.get("/healthz").headers["X-Request-Id"]
    assert len(generated) == 32


def test_openapi_lists_the_api(client) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["info"]["title"] == "Kwit"
    assert "/v1/invoices" in spec["paths"]
    assert "ApiKey" in spec["components"]["securitySchemes"]


@pytest.mark.parametrize("path", ["/metrics"])
def test_metrics_are_exposed(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert b"kwit_auth_failures_total" in response.data

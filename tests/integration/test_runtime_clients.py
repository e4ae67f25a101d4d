"""The Runtime owns its provider clients: built once on first use, closed with it."""

from __future__ import annotations

import threading
from pathlib import Path

from service.providers import paynow_for
from service.runtime import Runtime
from service.worker import job_context
from tests.support import make_settings


def test_clients_are_built_once_on_first_use_across_threads(sqlite_url: str, tmp_path: Path):
    rt = Runtime.build(make_settings(sqlite_url, tmp_path))
    try:
        seen: list[object] = []
        start = threading.Barrier(8)

        def use() -> None:
            start.wait()
            seen.extend([rt.ifirma(), paynow_for(rt)])

        threads = [threading.Thread(target=use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ifirma, paynow = rt.ifirma(), rt.paynow()
        assert ifirma is not None
        assert paynow is not None
        assert {id(c) for c in seen} == {id(ifirma), id(paynow)}
        assert job_context(rt).services["ifirma"] is ifirma
    finally:
        rt.close()


def test_close_releases_the_clients_and_a_later_use_builds_new_ones(
    sqlite_url: str, tmp_path: Path
):
    rt = Runtime.build(make_settings(sqlite_url, tmp_path))
    first = rt.paynow()
    first_ifirma = rt.ifirma()
    rt.close()
    rt.close()  # twice is harmless
    try:
        assert rt.job_context is None
        assert rt.paynow() is not first
        assert rt.ifirma() is not first_ifirma
    finally:
        rt.close()


def test_unconfigured_providers_have_no_client(sqlite_url: str, tmp_path: Path):
    settings = make_settings(
        sqlite_url,
        tmp_path,
        paynow_api_key=None,
        paynow_signature_key=None,
        ifirma_user=None,
        ifirma_invoice_key=None,
    )
    rt = Runtime.build(settings)
    try:
        assert paynow_for(rt) is None
        assert rt.ifirma() is None
        assert job_context(rt).services["ifirma"] is None
    finally:
        rt.close()

"""The /v1 HTTP API, one blueprint per resource."""

from __future__ import annotations

from flask_smorest import Blueprint


def blueprints() -> list[Blueprint]:
    from service.api import invoices, orders, whoami

    return [whoami.bp, orders.bp, invoices.bp]

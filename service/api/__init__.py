"""The /v1 HTTP API, one blueprint per resource."""

from __future__ import annotations

from flask_smorest import Blueprint


def blueprints() -> list[Blueprint]:
    from service.api import (
        archives,
        holds,
        invoice_admin,
        invoices,
        orders,
        orders_write,
        subjects,
        webhooks,
        whoami,
    )

    return [
        whoami.bp,
        orders.bp,
        orders_write.bp,
        invoices.bp,
        invoice_admin.bp,
        archives.bp,
        holds.bp,
        subjects.bp,
        webhooks.bp,
    ]

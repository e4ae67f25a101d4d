"""Marshmallow schemas shared by several resources."""

from __future__ import annotations

from marshmallow import Schema, fields


class PrincipalSchema(Schema):
    name = fields.String()
    role = fields.String()
    prefix = fields.String()


class RetentionSchema(Schema):
    retention_basis = fields.String(allow_none=True)
    retain_until = fields.Date(allow_none=True)

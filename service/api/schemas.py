"""Marshmallow schemas shared by several resources."""

from __future__ import annotations

from marshmallow import Schema, fields


class PrincipalSchema(Schema):
    name = fields.String()
    role = fields.String()
    prefix = fields.String()

"""Kwit invoicing package."""

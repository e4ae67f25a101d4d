"""Kwit webhooks package."""

"""Kwit emulators package."""

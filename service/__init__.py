"""Kwit service package."""

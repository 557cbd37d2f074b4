"""Renderers: turn report dictionaries into terminal text, JSON files and HTML."""

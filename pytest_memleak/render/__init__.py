"""Renderers: the typed report model to terminal text, the JSON file and the HTML page."""

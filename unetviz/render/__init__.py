"""Renderers: they return text or rich renderables and never print (only unetviz.cli prints)."""

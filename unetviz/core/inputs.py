"""What a family's input is: declared on its registry record, read by every command (never guessed)."""

from __future__ import annotations

TEXT_TOKENS = 77
"""CLIP's sequence length: the text context every Stable Diffusion pipeline passes."""

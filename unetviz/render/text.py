"""Plain-text helpers the sentence-style renderers share (``inspect``, ``fit``, ``weights --check``)."""

from __future__ import annotations

import textwrap


def wrapped(line: str, width: int) -> str:
    """A sentence wrapped at spaces to ``width`` (continuations indented two more than the line); a long path or
    key stays whole, whatever the width."""
    if len(line) <= width:
        return line
    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return "\n".join(textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                                   break_on_hyphens=False))

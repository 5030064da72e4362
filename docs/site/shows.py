"""Output shown as it looks: terminal sessions as SVG images made by rich, Python examples run while the site
builds (their printed output beside them), so no output on the site is typed by hand.
"""

from __future__ import annotations

import contextlib
import html
import io
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

OUT: dict[str, Path] = {}
"""``OUT["static"]``: the site's ``_static`` folder (set by ``generate.py``); images go in ``terminal/``."""
PAGE = {"root": ""}
"""The relative path from the page being rendered to the site's root (shared with ``uvdocs.PAGE``)."""

WIDTH = 80
"""Columns of the terminal shown: at the page's width an 80-column SVG has text as large as the prose's."""


def run_cli(argv: str, width: int = WIDTH, color: bool = False) -> tuple[int, str]:
    """(exit status, output) of ``unetviz ARGV`` at ``width`` columns: piped (plain text, as a script sees it)
    or, ``color``, in a pseudo-terminal of that size (the colours and layout a person sees)."""
    cmd = [sys.executable, "-m", "unetviz", *shlex.split(argv)]
    env = {**os.environ, "COLUMNS": str(width), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    if not color:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        return done.returncode, (done.stdout + done.stderr).rstrip()
    import fcntl
    import pty
    import struct
    import termios

    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 200, width, 0, 0))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sub, stderr=sub, env=env)
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    code = proc.wait()
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n").rstrip()


def terminal(argv: str, width: int = WIDTH, expect: int = 0) -> str:
    """``$ unetviz ARGV`` as a copyable command and its output as rich draws it (an SVG written now, shown
    as an image whose alt text is the plain output). The build fails when the exit status is not ``expect``."""
    from rich.console import Console
    from rich.text import Text

    code, ansi = run_cli(argv, width, color=True)
    if code != expect:
        raise RuntimeError(f"unetviz {argv}: exit status {code}, expected {expect}:\n{ansi[-2000:]}")
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print(Text.from_ansi(ansi), soft_wrap=True)
    key = re.sub(r"[^A-Za-z0-9]+", "-", argv).strip("-")
    svg = console.export_svg(title=f"unetviz {argv}")
    alt = html.escape(Text.from_ansi(ansi).plain, quote=True)
    img = f"_static/terminal/{key}.svg"
    if "static" in OUT:
        (OUT["static"] / "terminal").mkdir(parents=True, exist_ok=True)
        (OUT["static"] / "terminal" / f"{key}.svg").write_text(svg, encoding="utf-8")
    status = "" if expect == 0 else f"\n\n(exit status {expect}: the model fails at this size)"
    return (f"```text\n$ unetviz {argv}\n```\n\n```{{raw}} html\n<p class='uv-term'><img src='{PAGE['root']}{img}'"
            f" alt='{alt}' loading='lazy'></p>\n```{status}")


def pyrun(code: str) -> str:
    """A Python example and what it prints, run now: a code block, then the output block. An exception fails
    the build (an example that no longer runs is a broken page)."""
    code = textwrap.dedent(code).strip("\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<docs example>", "exec"), {"__name__": "__docs__"})  # the examples are our own pages
    shown = out.getvalue().rstrip()
    return f"```python\n{code}\n```\n" + (f"\n```text\n{shown}\n```\n" if shown else "")


CONTEXT = {"terminal": terminal, "pyrun": pyrun}

"""``why``'s disk cache: plain JSON files under the user's cache folder, one per kind of fact (``layers``:
every model's layer widths; ``tensors``: their state_dict shapes, read only for state_dict errors; ``sizes``: the
tracer's verdict on an input size, for size errors), each named by unetviz's version and a digest of the source
files the facts come from. Any edit to those files gives new names (the old files are removed, never read); a
file that cannot be read is rebuilt; writes are atomic (a temporary file renamed over the old one).
``UNETVIZ_CACHE_DIR`` moves the folder, ``UNETVIZ_NO_CACHE`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

KINDS = ("layers", "tensors", "sizes")
_TRACED = ("core", "engine", "families", "presets", "checkpoints", "diagnose")
"""The parts of the package the facts are computed by (renderers, the CLI and the torch side are not)."""


def path(kind: str) -> Path | None:
    """The file of one kind of fact for this unetviz; None when caching is off."""
    if os.environ.get("UNETVIZ_NO_CACHE"):
        return None
    root = Path(os.environ.get("UNETVIZ_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME")
                                                            or Path.home() / ".cache") / "unetviz")
    return root / f"why-{kind}-{version()}-{digest()}.json"


@lru_cache(maxsize=1)
def digest() -> str:
    """A digest of the source files the facts come from, by path, size and modification time (what Python's own
    bytecode cache checks): editing, adding or removing any of them invalidates the cache."""
    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    sources = [package / "tracing.py", *(p for part in _TRACED for p in (package / part).rglob("*.py"))]
    for p in sorted(sources):
        st = p.stat()
        h.update(f"{p.relative_to(package)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def version() -> str:
    """unetviz's installed version, from its ``unetviz-VERSION.dist-info`` folder's name (the wheel layout) on
    ``sys.path`` as ``importlib.metadata`` finds it, without importing that (a tenth of the command's time)."""
    import sys

    for entry in sys.path:
        with contextlib.suppress(OSError):
            for found in Path(entry or ".").glob("unetviz-*.dist-info"):
                return found.name[len("unetviz-"):-len(".dist-info")].replace("/", "_")
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("unetviz").replace("/", "_")
    except PackageNotFoundError:
        return "dev"


def load(kind: str) -> dict[str, Any]:
    """The stored facts of one kind (empty when there are none or the file is unreadable)."""
    p = path(kind)
    if p is None or not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(kind: str, data: dict[str, Any]) -> None:
    """Write one kind atomically and remove older versions' files; a folder that cannot be written is skipped."""
    import tempfile

    p = path(kind)
    if p is None:
        return
    with contextlib.suppress(OSError):
        p.parent.mkdir(parents=True, exist_ok=True)
        for old in p.parent.glob(f"why-{kind}-*.json"):  # another version's or digest's: never read again
            if old != p:
                with contextlib.suppress(OSError):
                    old.unlink()
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".why-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, p)

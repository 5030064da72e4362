"""Shared fixtures: golden files (``pytest --overwrite`` rewrites them), the CLI as a subprocess, presets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
Golden = Callable[[str, str], None]
Run = Callable[..., "subprocess.CompletedProcess[str]"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--overwrite", action="store_true", help="rewrite golden files from the current output")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """``golden(name, text)``: compare with tests/golden/NAME, or rewrite it under --overwrite."""
    overwrite = bool(request.config.getoption("--overwrite"))

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if overwrite or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if not overwrite:
                pytest.fail(f"golden file {name} did not exist; written now, check it in and rerun")
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file (pytest --overwrite)"

    return check


def cli(*args: str, columns: int = 120, cwd: Path | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m unetviz ARGS`` as a user runs it, piped, with a fixed ``COLUMNS``."""
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "unetviz", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd)


@pytest.fixture
def run() -> Run:
    return cli

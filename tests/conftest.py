"""Shared fixtures: golden files (``pytest --overwrite`` rewrites them) and real models on meta."""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--overwrite", action="store_true", help="rewrite golden files from the current output")


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``golden(name, text)``: compare with tests/golden/NAME, or rewrite it under --overwrite."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if request.config.getoption("--overwrite") or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if not request.config.getoption("--overwrite"):
                pytest.fail(f"golden file {name} did not exist; written now, check it in and rerun")
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file (--overwrite)"

    return check

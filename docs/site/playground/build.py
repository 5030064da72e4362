"""Build the playground's static files: ``python docs/site/playground/build.py OUT`` (``make playground``).

OUT gets the page (``app.html``, ``app.js``, ``app.css``, ``bridge.py``) and ``vendor/``: Pyodide and
Graphviz-in-WebAssembly from npm (``npm ci`` against the committed ``package-lock.json``, pinned), the unetviz
wheel built from this checkout and the pure-Python wheels it needs in the page from PyPI (pinned in
``WHEELS``), their bytecode compiled by Pyodide's CPython under Node (``precompile.mjs``: ``pycache.zip``), and
``vendor/wheels.json`` naming them. The page then loads nothing from anywhere but OUT.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
PAGE = ("app.html", "app.js", "app.css", "bridge.py")
WHEELS = ("graphviz==0.21",)
"""PyPI wheels the page imports besides unetviz: graphviz's Python package writes the DOT text (no binary)."""
PYODIDE = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
"""Pyodide's core: CPython in WebAssembly and its standard library; none of its optional packages is needed."""
VIZ = ("dist/viz.js",)
"""@viz-js/viz: Graphviz compiled to WebAssembly, one ES module with the binary inside."""


def run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"playground: {' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def npm(work: Path) -> Path:
    """``npm ci`` of the committed lock file in ``work`` (a build folder, so docs/site holds no node_modules)."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(HERE / name, work / name)
    run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], work)
    return work / "node_modules"


def wheels(dest: Path) -> list[str]:
    """The unetviz wheel of this checkout (built from a copy, so the tree gets no build/ or egg-info) and the
    pinned PyPI wheels; their file names."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (ROOT / name).is_file():
                shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "unetviz", src / "unetviz", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        built = Path(tmp) / "wheels"
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        run([*pip, "wheel", "--no-deps", "-w", str(built), str(src)], ROOT)
        run([*pip, "download", "--no-deps", "--only-binary=:all:", "-d", str(built), *WHEELS], ROOT)
        names = sorted(p.name for p in built.glob("*.whl"))
        for p in built.glob("*.whl"):
            shutil.copy2(p, dest / p.name)
    return names


def build(out: Path, work: Path) -> None:
    out, work = out.resolve(), work.resolve()
    if out.exists():
        shutil.rmtree(out)
    vendor = out / "vendor"
    modules = npm(work)
    for name in PYODIDE:
        (vendor / "pyodide").mkdir(parents=True, exist_ok=True)
        shutil.copy2(modules / "pyodide" / name, vendor / "pyodide" / name)
    for name in VIZ:
        (vendor / "viz").mkdir(parents=True, exist_ok=True)
        shutil.copy2(modules / "@viz-js" / "viz" / name, vendor / "viz" / Path(name).name)
    names = wheels(vendor / "wheels")
    # the packages' bytecode, compiled by Pyodide's CPython (the browser's), so the page imports without compiling
    run(["node", str(HERE / "precompile.mjs"), str(modules), str(vendor / "wheels"), str(vendor / "pycache.zip")],
        work)
    versions = {p: json.loads((modules / p / "package.json").read_text())["version"]
                for p in ("pyodide", "@viz-js/viz")}
    listed = {"wheels": names, "bytecode": "pycache.zip", "npm": versions}
    (vendor / "wheels.json").write_text(json.dumps(listed, indent=1), encoding="utf-8")
    for name in PAGE:
        shutil.copy2(HERE / name, out / name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the folder to write (e.g. docs/_build/playground)")
    ap.add_argument("--work", type=Path, default=ROOT / "docs" / "_build" / "npm", help="where npm ci runs")
    args = ap.parse_args(argv)
    build(args.out, args.work)
    print(f"playground: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

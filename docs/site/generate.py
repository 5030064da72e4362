"""Build the site's Sphinx source tree: ``python docs/site/generate.py OUT`` then ``sphinx OUT HTML``.

Every Markdown page under ``docs/site`` is a Jinja template whose figures, tables and diagrams are
computed by unetviz now (``uvdocs.CONTEXT``); a page per preset is made by iterating ``PRESETS``;
the CLI reference is read from the typer app; the notebooks in ``examples/`` are copied in for
myst-nb to execute. Nothing is written outside ``OUT``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import jinja2  # noqa: E402
import shows  # noqa: E402
import uvdocs  # noqa: E402
import zh  # noqa: E402
from pages import cli_reference, preset_index  # noqa: E402
from playground import links  # noqa: E402

TEMPLATES = "_templates"


def environment() -> jinja2.Environment:
    """Jinja over ``docs/site``: strict (an unknown name fails the build), comments ``{## ##}`` so
    MyST's own braces are left alone."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, comment_start_string="{##", comment_end_string="##}",
                             autoescape=False)
    env.globals.update(uvdocs.CONTEXT)
    env.globals.update(shows.CONTEXT)
    env.globals.update(zh.CONTEXT)
    env.globals.update(links.CONTEXT)
    return env


def render(env: jinja2.Environment, template: str, out: Path, rel: str, **extra: object) -> None:
    """Render ``template`` to ``out`` (the page ``rel`` of the site)."""
    uvdocs.PAGE["root"] = "../" * (len(Path(rel).parts) - 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(env.get_template(template).render(**extra), encoding="utf-8")


def pages(out: Path) -> list[str]:
    """Render every page template; return the pages written (relative paths)."""
    env = environment()
    done = []
    for src in sorted(HERE.rglob("*.md")):
        rel = src.relative_to(HERE).as_posix()
        if rel.startswith(TEMPLATES):
            continue
        render(env, rel, out / rel, rel)
        done.append(rel)
    from unetviz.presets import PRESETS

    for name in PRESETS:
        render(env, f"{TEMPLATES}/preset.md", out / "presets" / f"{name}.md", f"presets/{name}.md", name=name,
               preset=PRESETS[name])
        done.append(f"presets/{name}.md")
    (out / "presets" / "index.md").write_text(preset_index(), encoding="utf-8")
    (out / "reference" / "cli.md").write_text(cli_reference(), encoding="utf-8")
    return done


def notebooks(out: Path) -> list[str]:
    """Copy ``examples/*.ipynb`` (and the files they read) to ``OUT/notebooks`` with an index page."""
    dest = out / "notebooks"
    dest.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in (ROOT / "examples").glob("*.ipynb"))
    for p in (ROOT / "examples").iterdir():
        if p.suffix in (".ipynb", ".json"):
            shutil.copy2(p, dest / p.name)
    toc = "\n".join(Path(x).stem for x in names)
    (dest / "index.md").write_text("# Notebooks\n\nThe notebooks in `examples/`, executed while this site was built;"
                                   " the outputs below are theirs.\n\n```{toctree}\n:maxdepth: 1\n\n" + toc + "\n```\n",
                                   encoding="utf-8")
    return names


def build(out: Path) -> list[str]:
    """Write the whole source tree into ``out`` (emptied first)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(HERE / "conf.py", out / "conf.py")
    shutil.copytree(HERE / "_static", out / "_static")
    uvdocs.OUT["static"] = out / "_static" / "diagrams"
    uvdocs.OUT["static"].mkdir(parents=True, exist_ok=True)
    shows.OUT["static"] = out / "_static"
    shows.PAGE = uvdocs.PAGE  # one notion of the page being rendered
    # the changelog is the project's own file, as it is (its headings are consecutive, it links nowhere)
    (out / "changelog.md").write_text((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), encoding="utf-8")
    return pages(out) + notebooks(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the Sphinx source folder to write (e.g. docs/_build/src)")
    args = ap.parse_args(argv)
    build(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

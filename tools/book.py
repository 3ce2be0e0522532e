"""The course as a searchable static site, built from executed solution notebooks (``make book``).

The notebooks come with their outputs from the ci-profile run that tested them (``make test`` and
``make book`` set ``COURSE_EXECUTED_NOTEBOOKS``; see conftest.py), so the site shows what that run
computed, heard and measured: figures, audio players, printed tables. Nothing is committed with
outputs. Sphinx renders them through myst-nb (no re-execution) with the sphinx-book-theme; Sphinx's
own search index makes the site searchable offline.

    python tools/book.py --executed .make/executed --out .make/book          build
    python tools/book.py --executed .make/executed --out .make/book --check  build, then verify

``--check`` fails unless every notebook in ``solutions/`` has a page that holds at least as many
figures and audio players as its executed outputs, a link to open it in Colab, and the search index.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib._meta import RELEASE, REPOSITORY_URL  # noqa: E402  (after the path fix)

TITLE = "Everything is a mapping: neural networks for audio"

CONF = '''\
# Written by tools/book.py; edit that file instead.
project = {title!r}
author = "the course authors"
extensions = ["myst_nb"]
nb_execution_mode = "off"            # outputs come from the ci-profile run that tested them
nb_output_stderr = "remove"          # warnings belong in the test log, not the book
myst_enable_extensions = ["dollarmath", "amsmath"]
html_theme = "sphinx_book_theme"
html_title = {title!r}
html_theme_options = {{
    "repository_url": {repository!r},
    "path_to_docs": "solutions",
    "repository_branch": {branch!r},
    "use_repository_button": True,
    "launch_buttons": {{"colab_url": "https://colab.research.google.com"}},
}}
exclude_patterns = ["_build"]
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
'''


@dataclass
class PageCheck:
    """What one notebook's outputs hold and what its rendered page shows."""

    name: str
    figures: int
    audio: int
    page_figures: int
    page_audio: int
    colab_link: bool

    @property
    def problems(self) -> list[str]:
        found = []
        if self.page_figures < self.figures:
            found.append(f"{self.page_figures} of {self.figures} figures on the page")
        if self.page_audio < self.audio:
            found.append(f"{self.page_audio} of {self.audio} audio players on the page")
        if not self.colab_link:
            found.append("no 'Open in Colab' link")
        return found


def _title(notebook: dict) -> str:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "untitled"


def _count_outputs(notebook: dict) -> tuple[int, int]:
    figures = audio = 0
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            figures += "image/png" in data or "image/svg+xml" in data
            audio += "<audio" in "".join(data.get("text/html", ""))
    return figures, audio


def build(executed: Path, out: Path, solutions: Path = ROOT / "solutions") -> Path:
    """Write the Sphinx project under ``out/src`` and build the HTML into ``out/html``.

    Raises
    ------
    FileNotFoundError
        A solution notebook has no executed copy (its run failed or did not happen): the message
        names them and the command that records them.
    """
    names = sorted(p.name for p in solutions.glob("*.ipynb"))
    missing = [n for n in names if not (executed / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"no executed copy of {missing} in {executed}: a notebook whose run failed is left out. "
            f"Record them with `make book` (it runs the solutions in the ci profile first).")
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    toc = []
    for name in names:
        shutil.copy2(executed / name, src / name)
        toc.append(name.removesuffix(".ipynb"))
    lines = [f"# {TITLE}", "",
             "Every stage of an audio system is a mapping: each notebook computes one, lets you hear it",
             "and measures it. These pages are the solution notebooks as the course's `ci`-profile test",
             "run executed them (small offline data, CPU): figures, audio and numbers come from that run.",
             "Open a notebook in Colab with the rocket button, or clone the repository and run `make lab`.", "",
             "| notebook | title |", "|---|---|"]
    for name in names:
        notebook = json.loads((src / name).read_text(encoding="utf-8"))
        lines.append(f"| [{name.removesuffix('.ipynb')}]({name}) | {_title(notebook)} |")
    lines += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *toc, "```", ""]
    (src / "index.md").write_text("\n".join(lines), encoding="utf-8")
    (src / "conf.py").write_text(CONF.format(title=TITLE, repository=REPOSITORY_URL, branch=RELEASE),
                                 encoding="utf-8")
    html = out / "html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "auto", str(src), str(html)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sphinx-build failed ({' '.join(cmd)}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return html


def check(executed: Path, html: Path, solutions: Path = ROOT / "solutions") -> list[PageCheck]:
    """Compare every notebook's executed outputs with its page; raise listing every problem."""
    results, problems = [], []
    if not (html / "searchindex.js").is_file():
        problems.append("searchindex.js missing: the site is not searchable")
    for name in sorted(p.name for p in solutions.glob("*.ipynb")):
        page = html / (name.removesuffix(".ipynb") + ".html")
        if not page.is_file():
            problems.append(f"{name}: no page {page.name}")
            continue
        text = page.read_text(encoding="utf-8")
        figures, audio = _count_outputs(json.loads((executed / name).read_text(encoding="utf-8")))
        result = PageCheck(name, figures, audio, page_figures=len(re.findall(r"<img [^>]*src=\"_images/", text)),
                           page_audio=text.count("<audio"), colab_link="colab.research.google.com" in text)
        results.append(result)
        problems += [f"{name}: {p}" for p in result.problems]
    if problems:
        raise AssertionError("the rendered course is incomplete:\n  " + "\n  ".join(problems))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--executed", type=Path, default=ROOT / ".make" / "executed",
                    help="executed notebooks (COURSE_EXECUTED_NOTEBOOKS of the ci run)")
    ap.add_argument("--out", type=Path, default=ROOT / ".make" / "book")
    ap.add_argument("--check", action="store_true", help="verify every page after building")
    args = ap.parse_args(argv)
    try:
        html = build(args.executed, args.out)
        if args.check:
            results = check(args.executed, html)
            print(f"book: {len(results)} notebook pages, {sum(r.page_figures for r in results)} figures, "
                  f"{sum(r.page_audio for r in results)} audio players, searchable")
    except (FileNotFoundError, RuntimeError, AssertionError) as exc:
        print(f"book: {exc}", file=sys.stderr)
        return 1
    print(f"book: open {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

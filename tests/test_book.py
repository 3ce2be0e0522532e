"""tools/book.py: the checks that a rendered page holds its notebook's figures, audio and Colab link.

The full build runs in `make test` on the notebooks the ci phase just executed (and `make book`);
here the check itself is tested on hand-made pages, so a page that lost its audio cannot pass."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("book", ROOT / "tools" / "book.py")
book = importlib.util.module_from_spec(spec)
sys.modules["book"] = book            # dataclasses look their module up there
spec.loader.exec_module(book)


def _notebook(folder: Path, name: str, figures: int, audio: int) -> None:
    outputs = [{"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBOR", "text/plain": "fig"}}] * figures
    outputs += [{"output_type": "display_data", "metadata": {},
                 "data": {"text/html": '<audio controls="controls"></audio>', "text/plain": "audio"}}] * audio
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# A title"},
             {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "x", "outputs": outputs}]
    (folder / name).write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


@pytest.fixture()
def site(tmp_path):
    solutions, executed, html = tmp_path / "solutions", tmp_path / "executed", tmp_path / "html"
    for folder in (solutions, executed, html):
        folder.mkdir()
    for folder in (solutions, executed):
        _notebook(folder, "01_a.ipynb", figures=2, audio=1)
    (html / "searchindex.js").write_text("Search.setIndex({})")
    return solutions, executed, html


def _page(html: Path, figures: int, audio: int, colab: bool = True) -> None:
    body = '<img alt="x" src="_images/f.png" />' * figures + "<audio controls></audio>" * audio
    body += '<a href="https://colab.research.google.com/github/x">Colab</a>' if colab else ""
    (html / "01_a.html").write_text(f"<html><body>{body}</body></html>")


def test_a_complete_page_passes(site):
    solutions, executed, html = site
    _page(html, figures=2, audio=1)
    (result,) = book.check(executed, html, solutions)
    assert (result.figures, result.audio, result.page_figures, result.page_audio) == (2, 1, 2, 1)


@pytest.mark.parametrize("figures, audio, colab, message", [
    (1, 1, True, "1 of 2 figures"), (2, 0, True, "0 of 1 audio players"), (2, 1, False, "no 'Open in Colab' link")])
def test_a_page_missing_something_fails_naming_it(site, figures, audio, colab, message):
    solutions, executed, html = site
    _page(html, figures, audio, colab)
    with pytest.raises(AssertionError, match=message):
        book.check(executed, html, solutions)


def test_a_missing_page_and_a_missing_search_index_fail(site):
    solutions, executed, html = site
    (html / "searchindex.js").unlink()
    with pytest.raises(AssertionError, match="no page 01_a.html") as err:
        book.check(executed, html, solutions)
    assert "not searchable" in str(err.value)


def test_a_notebook_whose_run_failed_stops_the_build_with_the_command(site, tmp_path):
    solutions, executed, _ = site
    _notebook(solutions, "02_b.ipynb", figures=0, audio=0)
    with pytest.raises(FileNotFoundError, match=r"02_b.ipynb.*make book"):
        book.build(executed, tmp_path / "out", solutions)

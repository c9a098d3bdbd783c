"""Every chapter has its paired plain-Python copy (notebooks/py/, jupytext's percent format),
and the two hold the same cells, so a review of the .py diff is a review of the chapter.
After editing a notebook: `.venv/bin/jupytext --sync notebooks/*.ipynb`."""
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_every_chapter_and_only_chapters_are_paired():
    assert len(CHAPTERS) >= 15
    assert sorted(p.stem for p in (NOTEBOOKS / "py").glob("*.py")) == [p.stem for p in CHAPTERS]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_py_copy_holds_the_same_cells(chapter):
    script = jupytext.read(NOTEBOOKS / "py" / f"{chapter.stem}.py")
    notebook = nbformat.read(chapter, as_version=4)
    assert cells(script) == cells(notebook), (
        f"notebooks/py/{chapter.stem}.py is out of date: run .venv/bin/jupytext --sync {chapter.relative_to(NOTEBOOKS.parent)}")

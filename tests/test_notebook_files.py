"""Saved notebooks stay small: no widget state in the committed ones, nor in one saved as the
README says."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from s3aads_pandas.local import LocalS3

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Far above what a notebook's own outputs take, far below a widget state (800 KB for the explorer).
MAX_BYTES = 64 * 1024


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_committed_notebooks_hold_no_widget_state(path: Path) -> None:
    notebook = json.loads(path.read_text())
    assert "widgets" not in notebook["metadata"]
    assert path.stat().st_size < MAX_BYTES


def test_the_readme_way_to_save_a_notebook_leaves_the_widget_state_out(tmp_path: Path, local_s3: LocalS3) -> None:
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^jupyter nbconvert .*$", readme, flags=re.MULTILINE)
    copy = tmp_path / "explorer.ipynb"
    shutil.copy(ROOT / "notebooks" / "explorer.ipynb", copy)
    argv = [str(copy) if word == "notebooks/explorer.ipynb" else word for word in shlex.split(command)]
    assert str(copy) in argv
    local_s3.reset()
    saved = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, **local_s3.environ()})  # as after `s3aads serve`
    assert saved.returncode == 0, saved.stderr
    notebook = json.loads(copy.read_text())
    assert "widgets" not in notebook["metadata"] and copy.stat().st_size < MAX_BYTES
    assert any(cell.get("outputs") for cell in notebook["cells"])  # it did run and save its outputs

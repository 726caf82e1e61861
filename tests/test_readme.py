"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def run_examples(containing: str | None = None) -> dict:
    """Run the quick start, then the Python block that contains ``containing``; their namespace."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace: dict = {}
    exec(compile(blocks[0], "README quick start", "exec"), namespace)
    if containing is not None:
        example = next(block for block in blocks if containing in block)
        exec(compile(example, f"README example with {containing}", "exec"), namespace)
    return namespace


def test_quick_start_runs_as_written(s3: str | None) -> None:
    namespace = run_examples()
    table = namespace["table"]
    assert table.query(year=2020) == [{"id": "2", "year": "2020", "month": "01", "day": "01"}]
    assert table.ids() == ["2", "3"]
    assert namespace["db"].get_table("daily-data").columns == ["id", "year", "month", "day"]


def test_dask_example_runs_as_written(s3: str | None) -> None:
    namespace = run_examples("s3aads_pandas.dask")
    copied = namespace["copy"]
    assert copied.query() == namespace["table"].query(year=2020) != []

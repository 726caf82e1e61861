"""Progress in a notebook kernel: text that moves while rows are fetched, and nothing left behind."""

from __future__ import annotations

import nbclient
import nbformat

from s3aads_pandas.local import LocalS3
from s3aads_pandas.tables.executor import PROGRESS_MIN_ITEMS


def test_a_saved_notebook_keeps_no_progress_bar(local_s3: LocalS3) -> None:
    local_s3.reset()
    rows = PROGRESS_MIN_ITEMS + 50
    notebook = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [
        nbformat.v4.new_code_cell(
            f"import os\nos.environ.update({local_s3.environ()!r})\n"
            "import pandas as pd\nfrom s3aads_pandas import Database, Table\n"
            "db = Database('progress-db'); db.create(); table = Table('t', db, ['n'])\n"
            f"pd.DataFrame({{'n': range({rows}), 'data': [b'x'] * {rows}}}).s3aads.write(table)\n"
            "%load_ext s3aads_pandas"),
        nbformat.v4.new_code_cell("%%s3aads --quiet\nSELECT n, data FROM table"),  # no usage line: bars only
    ]
    client = nbclient.NotebookClient(notebook, timeout=120)
    shown: list[str] = []
    original = client.output

    def watch(outs, msg, display_id, cell_index):  # every output and update as the kernel sends it
        shown.append(str(msg["content"].get("data", {}).get("text/plain", "")))
        return original(outs, msg, display_id, cell_index)

    client.output = watch
    client.execute()
    assert any(f"/{rows}" in line for line in shown)  # the bar was shown, as text, while it moved
    for cell in notebook.cells:
        for output in cell.outputs:
            data = output.get("data", {})
            assert "application/vnd.jupyter.widget-view+json" not in data
            if output["output_type"] == "display_data":
                assert data == {"text/plain": ""}  # the bar emptied when it closed
    assert f"[{rows} rows x 2 columns]" in notebook.cells[1].outputs[-1]["data"]["text/plain"]
    for cell in notebook.cells:  # one output per bar: none made empty before the bar's first line
        assert [o["output_type"] for o in cell.outputs].count("display_data") <= 1, cell.outputs

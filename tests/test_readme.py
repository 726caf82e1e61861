"""The README's code runs as pasted: every Python and IPython block, in order, in one session,
in a fresh process with no AWS variable, no AWS config and no credentials anywhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"

#: Runs the blocks in one IPython shell (plain Python runs there unchanged, and so do magics),
#: stops at the first that fails, then prints what the checks below look at.
RUNNER = textwrap.dedent('''
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    for number, block in enumerate(json.load(open(sys.argv[1])), 1):
        result = shell.run_cell(block, store_history=True)
        if not result.success:
            sys.exit(f"README block {number} failed:\\n{block}")
    ns = shell.user_ns
    print(json.dumps({
        "endpoint": ns["server"].endpoint_url,
        "ids": ns["table"].ids(),
        "skipped": ns["result"].failed_keys,
        "recent": ns["recent"]["id"].tolist(),
        "years": ns["df"]["year"].tolist(),
        "copied": sorted(row["id"] for row in ns["copy"].query()),
        "sales": ns["pd"].read_s3aads("joeyism-test/sales", format="parquet")["amount"].tolist(),
        "explorer": type(ns["explorer"]).__name__,
        "spend": ns["spend"].to_dict("list"),
        "served": ns["served"],
    }))
''')


def code_blocks() -> list[str]:
    return re.findall(r"```(?:python|ipython)\n(.*?)```", README.read_text(), flags=re.S)


def test_every_block_runs_in_order_with_no_aws_account(tmp_path: Path) -> None:
    blocks = code_blocks()
    assert len(blocks) >= 10
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment["HOME"] = str(tmp_path)  # no ~/.aws either
    done = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json")], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["endpoint"].startswith("http://127.0.0.1:")
    assert seen["ids"] == ["2", "3", "5"]
    assert seen["skipped"] == ["daily-data/4/2020/02/01", "daily-data/5/2020/02/01"]
    assert seen["recent"] == ["2", "5"] and seen["years"] == ["2020", "2021"]
    assert seen["copied"] == ["2", "5"] and seen["sales"] == [1.5, 2.5, 3.0]
    assert seen["explorer"] == "Explorer"
    assert seen["spend"] == {"name": ["Ada", "Bo"], "order_count": [2, 1], "total": [12, 3]}
    assert seen["served"] == [{"year": 2020, "id": 1, "data": "first"}, 404, [{"year": "2020", "id": "1"}]]

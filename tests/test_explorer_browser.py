"""The explorer in a real browser: Voila renders it, headless Chromium (Debian's) drives it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from s3aads_pandas import Database, Table
from s3aads_pandas.local import LocalS3

#: Names Chromium goes by on Linux distributions; S3AADS_CHROMIUM names another binary.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """The browser to drive: found on PATH, or a clear skip where none is installed (never in CI)."""
    found = os.environ.get("S3AADS_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("no Chromium found: CI installs Debian's chromium package (see .ci/run)")
    pytest.skip("no Chromium found on PATH (on Debian: apt-get install chromium), or set S3AADS_CHROMIUM")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def voila_url(local_s3: LocalS3, tmp_path: Path) -> Iterator[str]:
    local_s3.reset()
    db = Database("browser-db", endpoint_url=local_s3.endpoint_url)
    db.create()
    events = Table("events", db, ["kind", "id"])
    for kind, id_ in [("click", 1), ("click", 2), ("view", 3)]:
        events.insert_string(f'{{"kind": "{kind}", "id": {id_}}}', kind=kind, id=id_)
    events.insert(b"<script>alert(1)</script>", kind="view", id=4)

    notebook = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell('from s3aads_pandas import explore\nexplore("browser-db")')]
    path = tmp_path / "explorer.ipynb"
    nbformat.write(notebook, path)
    port = _free_port()
    env = {**os.environ, **local_s3.environ()}
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", str(path), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "api", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # the server answers (it has no /api of its own)
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(20)


def rows(page: Page) -> list[str]:
    texts = page.locator(".s3aads-rows select option").all_inner_texts()
    return [text.replace("\xa0", " ").strip() for text in texts]  # widgets show spaces as nbsp


def test_explorer_in_voila_and_chromium(voila_url: str, tmp_path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(voila_url, timeout=120_000)
            expect(page.locator(".s3aads-explorer")).to_be_visible(timeout=120_000)
            expect(page.locator(".s3aads-rows select option")).to_have_count(4, timeout=30_000)
            assert rows(page) == ["click / 1", "click / 2", "view / 3", "view / 4"]

            kind = page.locator(".widget-select-multiple").filter(has_text="kind").locator("select")
            kind.select_option("view")
            expect(page.locator(".s3aads-rows select option")).to_have_count(2, timeout=30_000)
            assert rows(page) == ["view / 3", "view / 4"]

            page.locator(".s3aads-rows select").select_option(index=rows(page).index("view / 4"))
            preview = page.locator(".s3aads-preview pre")
            expect(preview).to_have_text("<script>alert(1)</script>", timeout=30_000)
            page.locator(".s3aads-rows select").select_option(index=rows(page).index("view / 3"))
            expect(preview).to_contain_text('"kind": "view"', timeout=30_000)

            shot = Path(os.environ.get("S3AADS_SCREENSHOT_DIR", tmp_path)) / "explorer.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert dialogs == []  # the payload's script never ran
        finally:
            browser.close()

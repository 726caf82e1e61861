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


LONG_NAME = "the-table-with-a-name-long-enough-to-be-cut-by-a-narrow-dropdown"
#: A payload that runs script if anything renders it as HTML (it is the largest, 52 bytes).
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def voila_url(local_s3: LocalS3, tmp_path: Path) -> Iterator[str]:
    local_s3.reset()
    db = Database("browser-db", endpoint_url=local_s3.endpoint_url)
    db.create()
    events = Table("events", db, ["kind", "year", "id"])
    for id_ in range(25):
        events.insert_string(f'{{"kind": "click", "id": {id_}}}', kind="click", year=2020, id=id_)
    events.insert_string('{"kind": "view"}', kind="view", year=2021, id=1)
    events.insert(HOSTILE.encode(), kind="view", year=2022, id="<b>x</b>")
    long_table = Table(LONG_NAME, db, ["first_key_column", "second_key_column"])
    long_table.insert(b"1", first_key_column=1, second_key_column=2)

    yield from serve_voila("'browser-db'", tmp_path, {**os.environ, **local_s3.environ()})


def serve_voila(source: str, tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """Voila serving a notebook that explores ``source`` (Python code); yields its URL."""
    notebook = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(f"from s3aads_pandas import Database, Table, explore\n"
                                                f"explore({source})")]
    path = tmp_path / "explorer.ipynb"
    nbformat.write(notebook, path)
    port = _free_port()
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


#: Rows of the large table: twice what the grid holds, of 200 customers.
LARGE_ROWS = 20_000


@pytest.fixture
def large_voila_url(tmp_path: Path) -> Iterator[str]:
    """A 20,000-row table in a folder, its files written as any program of this machine writes
    them (through the API it takes seconds; to the local endpoint, minutes)."""
    shop = Database(f"file://{tmp_path}/databases/shop")
    for row in range(LARGE_ROWS):
        path = tmp_path / "databases" / "shop" / "events" / f"c{row % 200:03d}" / str(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}")
    yield from serve_voila(f"Table('events', Database({shop.url!r}), ['customer', 'id'])", tmp_path, dict(os.environ))


def grid_rows(page: Page) -> list[list[str]]:
    """The cells of the rows the grid shows, as text."""
    return [row.split("\t") for row in page.locator(".s3aads-grid table.dataTable tbody tr").all_inner_texts()]


#: The width of the widest option of a <select> in its own font, and the room it has.
TEXT_WIDTHS = """select => {
    const context = document.createElement("canvas").getContext("2d");
    context.font = getComputedStyle(select).font;
    const widths = [...select.options].map(option => context.measureText(option.text).width);
    return [Math.max(...widths), select.clientWidth];
}"""


def right_edge(page: Page, selector: str) -> float:
    return page.locator(selector).first.evaluate("element => element.getBoundingClientRect().right")


def test_explorer_in_voila_and_chromium(voila_url: str, tmp_path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(voila_url, timeout=120_000)
            expect(page.locator(".s3aads-explorer")).to_be_visible(timeout=120_000)
            body = page.locator(".s3aads-grid table.dataTable tbody tr")
            expect(body).to_have_count(20, timeout=60_000)  # the first page of 27 rows
            expect(page.locator(".s3aads-grid")).to_contain_text("of 27 entries")
            assert grid_rows(page)[0][:3] == ["click", "2020", "0"]
            widest, room = page.locator(".widget-dropdown select").first.evaluate(TEXT_WIDTHS)
            assert widest <= room  # the long table name and its columns show whole

            headers = [h.strip() for h in page.locator(".s3aads-grid thead th").all_inner_texts()]
            assert headers == ["kind", "year", "id", "size (bytes)", "last modified (UTC)"]

            search = page.locator(".s3aads-grid input[type=search]")
            search.fill("2022")
            expect(body).to_have_count(1, timeout=10_000)
            search.fill("")
            expect(body).to_have_count(20, timeout=10_000)

            size = page.locator(".s3aads-grid thead th").filter(has_text="size").locator(".dt-column-order")
            size.click()
            size.click()  # descending: the largest payload first
            expect(body.first).to_contain_text("<b>x</b>", timeout=10_000)
            first = page.locator(".s3aads-grid tbody tr").first
            assert grid_rows(page)[0][:4] == ["view", "2022", "<b>x</b>", str(len(HOSTILE))]
            assert first.locator("b").count() == 0  # the key's markup is text, not HTML

            year_filter = page.locator(".s3aads-filter").filter(has_text="year")
            year = year_filter.locator("input")
            year.fill("202")  # typing: the values that complete it are suggested
            expect(year_filter.locator("datalist option")).to_have_count(3, timeout=10_000)
            year.fill("2021")
            year.press("Enter")  # a non-leading column, alone
            expect(body).to_have_count(1, timeout=30_000)
            assert grid_rows(page)[0][:3] == ["view", "2021", "1"]
            expect(page.locator(".s3aads-summary")).to_have_text("year = 2021")
            year.fill("2021, 2022")
            year.press("Enter")
            expect(body).to_have_count(2, timeout=30_000)
            expect(page.locator(".s3aads-summary")).to_have_text("year ∈ {2021, 2022}")

            body.filter(has_text="<b>x</b>").click()
            preview = page.locator(".s3aads-preview pre")
            expect(preview).to_have_text(HOSTILE, timeout=30_000)
            expect(page.locator(".s3aads-preview-key")).to_contain_text("kind = view · year = 2022 · id = <b>x</b>")
            line_height = preview.evaluate("element => parseFloat(getComputedStyle(element).lineHeight)")
            font_size = preview.evaluate("element => parseFloat(getComputedStyle(element).fontSize)")
            assert line_height < 1.6 * font_size  # not the page's 28px

            page.get_by_role("button", name="Load DataFrame").click()
            loaded = page.locator(".s3aads-loaded")
            expect(loaded).to_contain_text("explorer.df: 2 rows × 4 columns", timeout=30_000)
            expect(loaded).to_contain_text("object")
            assert loaded.locator("td").filter(has_text="<b>x</b>").count() == 1  # escaped there too

            edge = right_edge(page, ".s3aads-explorer")
            for part in (".s3aads-explorer textarea", ".s3aads-grid", ".s3aads-loaded"):
                assert right_edge(page, part) <= edge + 0.5, part  # nothing overflows the explorer

            shot = Path(os.environ.get("S3AADS_SCREENSHOT_DIR", tmp_path)) / "explorer.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert dialogs == []  # the payload's script never ran
        finally:
            browser.close()


def test_the_grid_holds_every_row_the_status_line_says_in_chromium(large_voila_url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.goto(large_voila_url, timeout=120_000)
            explorer = page.locator(".s3aads-explorer")
            expect(explorer).to_be_visible(timeout=120_000)
            # Listed again once the page shows the explorer: Voila creates the page's widgets from
            # a snapshot of their state, and an update sent while the page loads can be lost there.
            page.get_by_role("button", name="Refresh").click()
            expect(explorer).to_contain_text("20,000 matching rows; the grid holds the first 10,000", timeout=120_000)
            grid = page.locator(".s3aads-grid")
            expect(grid).to_contain_text("of 10,000 entries", timeout=60_000)  # all of them: no sample
            expect(grid).not_to_contain_text("downsampled")
            body = page.locator(".s3aads-grid table.dataTable tbody tr")

            search = page.locator(".s3aads-grid input[type=search]")
            search.fill("c098")  # rows far past the first 1,400 of the grid's 10,000
            expect(grid).to_contain_text("of 100 entries", timeout=30_000)
            assert {row[0] for row in grid_rows(page)} == {"c098"}
            search.fill("")

            ids = page.locator(".s3aads-grid thead th").filter(has_text="id").locator(".dt-column-order")
            ids.click()
            ids.click()  # descending, over every row held
            expect(body.first).to_contain_text("19899", timeout=30_000)  # the largest id among c000..c099
            assert grid_rows(page)[0][:2] == ["c099", "19899"]
        finally:
            browser.close()

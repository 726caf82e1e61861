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
#: A key value as long as one that pushed the size and last-modified columns out of view.
LONG_VALUE = "v" * 207
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
    long_table.insert(b"2", first_key_column=2, second_key_column=LONG_VALUE)

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
    """An explorer of a table in a folder that has no rows yet (see :func:`write_large_table`)."""
    shop = Database(f"file://{tmp_path}/databases/shop")
    shop.create()
    yield from serve_voila(f"Table('events', Database({shop.url!r}), ['customer', 'id'])", tmp_path, dict(os.environ))


def write_large_table(tmp_path: Path) -> None:
    """20,000 rows of 200 customers, their files written as any program of this machine writes
    them (through the API it takes seconds; to the local endpoint, minutes)."""
    for row in range(LARGE_ROWS):
        path = tmp_path / "databases" / "shop" / "events" / f"c{row % 200:03d}" / str(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}")


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

            for label in page.locator(".s3aads-filter label").all():  # every column's name shows whole
                assert label.evaluate("element => element.scrollWidth <= element.clientWidth"), label.inner_text()
            modified = page.locator(".s3aads-grid tbody td").nth(4)
            assert modified.evaluate("element => getComputedStyle(element).whiteSpace") == "nowrap"  # one line
            assert preview.evaluate("element => getComputedStyle(element).overflowY") == "auto"  # scrolls inside
            assert preview.evaluate("element => parseFloat(getComputedStyle(element).maxHeight)") <= 31 * font_size
            decode = page.locator(".widget-toggle-buttons").first.bounding_box()
            load = page.get_by_role("button", name="Load DataFrame").bounding_box()
            assert decode is not None and load is not None
            assert abs(decode["y"] + decode["height"] / 2 - load["y"] - load["height"] / 2) <= 4  # one centred row

            error_box = page.locator(".s3aads-error > div").first
            assert error_box.evaluate("element => getComputedStyle(element).borderTopStyle") == "none"  # none shown
            shots = Path(os.environ.get("S3AADS_SCREENSHOT_DIR", tmp_path))
            page.screenshot(path=str(shots / "explorer.png"), full_page=True)
            assert (shots / "explorer.png").stat().st_size > 10_000

            page.locator(".widget-dropdown select").first.select_option(
                label=f"{LONG_NAME} (first_key_column, second_key_column)")
            expect(page.locator(".s3aads-grid thead").first).to_contain_text("second_key_column", timeout=30_000)
            expect(body).to_have_count(2, timeout=30_000)
            grid_edge = right_edge(page, ".s3aads-grid")
            for header in ("size (bytes)", "last modified (UTC)"):  # in view beside a 207-character value
                cell = page.locator(".s3aads-grid thead th").filter(has_text=header).first
                assert cell.evaluate("element => element.getBoundingClientRect().right") <= grid_edge + 0.5, header
            page.screenshot(path=str(shots / "explorer-long-key.png"), full_page=True)
            assert dialogs == []  # the payload's script never ran
        finally:
            browser.close()


def test_the_grid_holds_every_row_the_status_line_says_in_chromium(large_voila_url: str, tmp_path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.goto(large_voila_url, timeout=120_000)
            explorer = page.locator(".s3aads-explorer")
            expect(explorer).to_contain_text("no matching rows", timeout=120_000)
            # The rows arrive once the page shows the explorer, and Refresh lists them: Voila builds
            # a page's widgets from a snapshot of their state, and an update sent while the page
            # is still loading can be lost there.
            write_large_table(tmp_path)
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

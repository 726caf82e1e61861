"""The explorer at 100,000 rows in Chromium (Voila): first rows, the whole listing, a filter.

Writes a table of ``--rows`` rows (``customer`` x ``id``, 200 customers) into a ``file://``
folder (as files, as any program writes them) and into the local endpoint (moto, seeded in its
process). It times ``Explorer(table)`` in this process to its first page of rows (as in a
notebook whose kernel runs), then serves a notebook that explores the table with Voila and
times in headless Chromium, with default settings, from opening the page: the explorer showing
and the grid's first rows; then from Refresh pressed while that listing is still in flight: the
grid's first rows and the status line saying the whole listing is in hand; a filter on the
non-leading ``id`` column (applied to the listing in hand); and a mistyped column in the magic
(in process: it is reported before any request). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell
from playwright.sync_api import Page, expect, sync_playwright

from s3aads_pandas import Database, S3aadsError, Table, configure, usage
from s3aads_pandas.local import LocalS3
from s3aads_pandas.notebook.explorer import Explorer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_explorer_browser import CHROMIUM_ARGS, chromium, serve_voila  # the browser test's own

CUSTOMERS = 200
#: Records when the grid is emptied (Refresh empties it for the new listing) and then next
#: shows a page of rows: a DOM observer sees states too brief for a look from outside.
WATCH_GRID = """() => {
    const grid = document.querySelector(".s3aads-grid");
    const watch = window.s3aadsGrid = {watched: performance.now(), emptied: null, filled: null};
    new MutationObserver(() => {
        const rows = grid.querySelectorAll("table.dataTable tbody tr").length;
        const empty = grid.querySelector("table.dataTable tbody td.dt-empty") !== null;
        if (watch.emptied === null && empty) {
            watch.emptied = performance.now();
        } else if (watch.emptied !== null && watch.filled === null && !empty && rows >= 20) {
            watch.filled = performance.now();
        }
    }).observe(grid, {childList: true, subtree: true});
}"""
voila = contextlib.contextmanager(serve_voila)


def timed_in_chromium(url: str, rows: int) -> dict[str, float]:
    """Seconds from opening the page to the explorer showing, to its first rows, to the whole
    listing, and to Refresh's first rows while that listing is in flight; then a filter."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page: Page = browser.new_page(viewport={"width": 1200, "height": 1400})
        explorer = page.locator(".s3aads-explorer")
        body = page.locator(".s3aads-grid table.dataTable tbody tr")
        start = time.perf_counter()
        page.goto(url, timeout=300_000)  # Voila starts a kernel, which runs explore(...) and lists
        expect(explorer).to_be_visible(timeout=300_000)
        shown = time.perf_counter() - start
        expect(body).to_have_count(20, timeout=300_000)
        first = time.perf_counter() - start
        expect(explorer).to_contain_text("listing…", timeout=300_000)  # the first rows came mid-listing
        page.evaluate(WATCH_GRID)
        started = time.perf_counter()
        page.get_by_role("button", name="Refresh").click()  # the listing in flight is cancelled, not waited for
        page.wait_for_function("window.s3aadsGrid.filled !== null", timeout=300_000)
        refreshed = page.evaluate("(window.s3aadsGrid.filled - window.s3aadsGrid.watched) / 1000")
        expect(explorer).to_contain_text(f"{rows:,} matching rows", timeout=900_000)
        whole = time.perf_counter() - started
        wanted = page.locator(".s3aads-filter").filter(has_text="id").locator("input")
        started = time.perf_counter()
        wanted.fill(f"{rows - 1}, 7")
        wanted.press("Enter")
        expect(explorer).to_contain_text("2 matching rows", timeout=300_000)
        filtered = time.perf_counter() - started
        browser.close()
    return {"shown": shown, "first": first, "refreshed": refreshed, "whole": whole, "filtered": filtered}


def first_rows_in_process(database: Database) -> float:
    """Seconds from ``Explorer(table)`` to its grid holding a page of rows, in this process (as
    in a notebook whose kernel is running: no page to load, no kernel to start)."""
    start = time.perf_counter()
    explorer = Explorer(Table("events", database, ["customer", "id"]))
    while explorer.grid.df is None or len(explorer.grid.df) < explorer.page_size:
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    explorer.cancel()
    explorer.wait()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    print(f"{args.rows:,} rows ({CUSTOMERS} customers x id), default settings, Voila and headless Chromium\n")
    print("| database | explore(): first rows | page open: explorer shown | page open: first rows "
          "| Refresh mid-listing: first rows | whole listing | id filter on the listing in hand | mistyped column |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    try:
        root = work / "databases"
        for row in range(args.rows):
            path = root / "shop" / "events" / f"c{row % CUSTOMERS:03d}" / str(row)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"{}")
        folder_db = Database(f"file://{root}/shop")
        folder_db.ensure_recorded("events", ["customer", "id"])  # what the magic checks a column against
        with LocalS3() as server:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.s3.models import s3_backends

            configure(server.settings())  # the magic's statements, in this process
            endpoint_db = Database("shop")
            endpoint_db.create()
            backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            for row in range(args.rows):
                backend.put_object("shop", f"events/c{row % CUSTOMERS:03d}/{row}", b"{}")
            endpoint_db.ensure_recorded("events", ["customer", "id"])
            cases = [("file://", folder_db, dict(os.environ)),
                     ("local endpoint", endpoint_db, {**os.environ, **server.environ()})]
            for label, database, env in cases:
                source = f"Table('events', Database({database.url!r}), ['customer', 'id'])"
                in_process = first_rows_in_process(database)
                with voila(source, work, env) as url:
                    seconds = timed_in_chromium(url, args.rows)
                shell = InteractiveShell.instance()
                shell.run_line_magic("load_ext", "s3aads_pandas")
                start = time.perf_counter()
                with usage() as sent:
                    try:
                        shell.run_cell_magic("s3aads", f"--database {database.url}", "SELECT customr FROM events")
                    except S3aadsError as error:
                        assert "customr" in str(error)
                mistyped = time.perf_counter() - start
                assert sent.requests["ListObjectsV2"] <= 1, sent.requests  # the table's first key, not its rows
                print(f"| {label} | {in_process:.1f} s | {seconds['shown']:.1f} s | {seconds['first']:.1f} s | "
                      f"{seconds['refreshed']:.1f} s | {seconds['whole']:.1f} s | "
                      f"{seconds['filtered']:.2f} s | {mistyped:.2f} s |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

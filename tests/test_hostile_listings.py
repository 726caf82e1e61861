"""Listings from a buggy server end in a named error, never in lost, invented or repeated rows."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from s3aads_pandas import Database, S3RequestError, Table

KEYS = [f"t/{i:04d}" for i in range(2000)]
#: A pathology: (the query of a LIST, its page number) -> the page's keys, IsTruncated, next token.
Pages = Callable[[dict[str, str], int], tuple[list[str], bool, str | None]]


def honest(query: dict[str, str], _: int) -> tuple[list[str], bool, str | None]:
    """Pages of 1,000 keys after the StartAfter or the token (the last key listed)."""
    after = query.get("continuation-token") or query.get("start-after") or ""
    rest = [key for key in KEYS if key > after]
    return rest[:1000], len(rest) > 1000, rest[999] if len(rest) > 1000 else None


PATHOLOGIES: dict[str, Pages] = {
    "truncated without a token": lambda query, page: (KEYS[:1000], True, None),
    "the same token forever": lambda query, page: (KEYS[page * 10:page * 10 + 10], True, "again"),
    "the same page forever": lambda query, page: (KEYS[:1000], True, f"token-{page}"),
    "keys out of order": lambda query, page: ([*KEYS[:500], *KEYS[:500]], True, "t/0999"),
    "keys repeated across pages": lambda query, page: (KEYS[page * 500:page * 500 + 1000], page < 2,
                                                        f"t/{page * 500 + 999:04d}"),
}


class HostileS3:
    """An S3 endpoint on 127.0.0.1 whose ListObjectsV2 answers what ``pages`` says (or an empty
    body), and whose HeadBucket says the bucket is in us-east-1."""

    def __init__(self, pages: Pages | None) -> None:
        self.lists = 0
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("x-amz-bucket-region", "us-east-1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                hostile.lists += 1
                body = b"" if pages is None else hostile.page(query, *pages(query, hostile.lists - 1))
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def page(query: dict[str, str], keys: list[str], truncated: bool, token: str | None) -> bytes:
        contents = "".join(f"<Contents><Key>{key}</Key><Size>1</Size><ETag>\"e\"</ETag>"
                           "<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>" for key in keys)
        next_token = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
        return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>hostile</Name>'
                f"<Prefix>{query.get('prefix', '')}</Prefix><KeyCount>{len(keys)}</KeyCount>"
                f"<MaxKeys>1000</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"
                f"{contents}{next_token}</ListBucketResult>").encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileS3]:
    server = HostileS3(request.param)
    yield server
    server.stop()


def table_on(server: HostileS3, transport: str) -> Table:
    db = Database("hostile", endpoint_url=server.url, transport=transport, max_attempts=2, deadline=20)
    return Table("t", db, ["id"])


@pytest.mark.parametrize("hostile", [honest], indirect=True)
@pytest.mark.parametrize("transport", ["boto3", "obstore"])
def test_the_stub_lists_exactly_when_it_is_honest(hostile: HostileS3, transport: str) -> None:
    assert [row.key for row in table_on(hostile, transport).list_rows()] == KEYS


@pytest.mark.parametrize("hostile", list(PATHOLOGIES.values()), ids=list(PATHOLOGIES), indirect=True)
def test_a_buggy_listing_is_a_named_error_never_a_result(hostile: HostileS3) -> None:
    table = table_on(hostile, "boto3")
    with pytest.raises(S3RequestError, match="listing of s3://hostile/t/") as raised:
        table.count()
    assert "the store is at fault" in str(raised.value) and hostile.lists < 10


@pytest.mark.parametrize("hostile", [PATHOLOGIES["the same page forever"], PATHOLOGIES["keys out of order"]],
                         ids=["the same page forever", "keys out of order"], indirect=True)
def test_obstore_listings_are_checked_the_same(hostile: HostileS3) -> None:
    with pytest.raises(S3RequestError, match=r"page [0-9]+ of the listing of s3://hostile/t/"):
        table_on(hostile, "obstore").count()
    assert hostile.lists < 10


@pytest.mark.parametrize("hostile", [None], ids=["an empty body"], indirect=True)
def test_an_empty_answer_to_a_listing_is_no_empty_table(hostile: HostileS3) -> None:
    with pytest.raises(S3RequestError, match="no listing in its body"):
        table_on(hostile, "boto3").count()
    assert hostile.lists == 2  # retried once, then named

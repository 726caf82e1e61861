"""An in-memory S3 endpoint that costs microseconds a request, with a fixed latency added.

moto spends milliseconds of CPU a request, and rescans a bucket for every LIST, so against it a
benchmark measures moto. This endpoint answers the requests a read, a write and a listing send (HeadBucket,
CreateBucket, ListObjectsV2 with a prefix, StartAfter, a continuation token and a Delimiter,
GetObject with If-None-Match, HeadObject, PutObject with If-None-Match and If-Match,
DeleteObject) from a sorted list of keys, so that what is measured
is the client, and the latency it pays. It checks no signature and is for benchmarks only.
It serves HTTP/1.1 on one asyncio loop (the latency is a sleep of the request's task, not of a
thread), so requests in flight cost no thread and any number of them wait at once.

Run as ``python benchmarks/fast_s3.py --port 5555 --latency 0.05 --seed BUCKET PREFIX ROWS SIZE``;
``GET /_requests`` answers the number of S3 requests served so far.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import io
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

COUNT_PATH = "/_requests"


class Bucket:
    def __init__(self) -> None:
        self.keys: list[str] = []  # sorted
        self.objects: dict[str, tuple[bytes, str, float]] = {}  # key -> (body, ETag, modified)

    def put(self, key: str, body: bytes) -> str:
        etag = f'"{hashlib.md5(body).hexdigest()}"'
        if key not in self.objects:
            bisect.insort(self.keys, key)
        self.objects[key] = (body, etag, time.time())
        return etag

    def delete(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            self.keys.pop(bisect.bisect_left(self.keys, key))


class FastS3:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.buckets: dict[str, Bucket] = {}
        self.served = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == COUNT_PATH:
            return _answer(start_response, "200 OK", str(self.served).encode())
        with self.lock:
            self.served += 1
        method = environ["REQUEST_METHOD"]
        name, _, key = path.encode("latin-1").decode("utf-8").lstrip("/").partition("/")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        with self.lock:
            bucket = self.buckets.get(name)
            if method == "PUT" and not key:
                self.buckets.setdefault(name, Bucket())
                return _answer(start_response, "200 OK")
            if bucket is None:
                return _error(start_response, "404 Not Found", "NoSuchBucket", method)
            if not key:
                if method == "HEAD":
                    return _answer(start_response, "200 OK", headers=[("x-amz-bucket-region", "us-east-1")])
                return _list(start_response, name, bucket, query)
            return self._object(environ, start_response, method, bucket, key)

    def _object(self, environ: dict[str, Any], start_response: Callable[..., Any], method: str, bucket: Bucket,
                key: str) -> Iterable[bytes]:
        stored = bucket.objects.get(key)
        if method == "PUT":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            if_none, if_match = environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_IF_MATCH")
            if (if_none == "*" and stored) or (if_match and (not stored or stored[1] != if_match)):
                status = "404 Not Found" if if_match and not stored else "412 Precondition Failed"
                return _error(start_response, status, "PreconditionFailed", method)
            etag = bucket.put(key, body)
            return _answer(start_response, "200 OK", headers=[("ETag", etag)])
        if method == "DELETE":
            bucket.delete(key)
            return _answer(start_response, "204 No Content")
        if stored is None:
            return _error(start_response, "404 Not Found", "NoSuchKey", method)
        body, etag, modified = stored
        headers = [("ETag", etag), ("Last-Modified", formatdate(modified, usegmt=True)),
                   ("Content-Type", "application/octet-stream")]
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            return _answer(start_response, "304 Not Modified", headers=headers)
        if method == "HEAD":
            return _answer(start_response, "200 OK", headers=[*headers, ("Content-Length", str(len(body)))],
                           length=False)
        return _answer(start_response, "200 OK", body, headers)


def _list(start_response: Callable[..., Any], name: str, bucket: Bucket,
          query: dict[str, list[str]]) -> Iterable[bytes]:
    """A ListObjectsV2 page: the keys under the prefix (after StartAfter, or from where the
    continuation token says), those past the Delimiter rolled up into common prefixes."""
    prefix = query.get("prefix", [""])[0]
    delimiter = query.get("delimiter", [""])[0]
    limit = min(int(query.get("max-keys", ["1000"])[0]), 1000)
    keys = bucket.keys
    if token := query.get("continuation-token", [""])[0]:
        index = bisect.bisect_left(keys, token)  # the token is the next key to list
    elif after := query.get("start-after", [""])[0]:
        index = bisect.bisect_right(keys, after)
    else:
        index = bisect.bisect_left(keys, prefix)
    chosen: list[str] = []
    common: list[str] = []
    while index < len(keys) and keys[index].startswith(prefix) and len(chosen) + len(common) < limit:
        key = keys[index]
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            chosen.append(key)
            index += 1
            continue
        folder = key[: cut + len(delimiter)]
        common.append(folder)
        index = bisect.bisect_left(keys, folder[:-1] + chr(ord(folder[-1]) + 1))  # past every key under it
    truncated = index < len(keys) and keys[index].startswith(prefix)
    contents = "".join(
        f"<Contents><Key>{escape(key)}</Key><LastModified>"
        f"{time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(bucket.objects[key][2]))}</LastModified>"
        f"<ETag>{escape(bucket.objects[key][1])}</ETag><Size>{len(bucket.objects[key][0])}</Size>"
        f"<StorageClass>STANDARD</StorageClass></Contents>" for key in chosen)
    folders = "".join(f"<CommonPrefixes><Prefix>{escape(folder)}</Prefix></CommonPrefixes>" for folder in common)
    following = f"<NextContinuationToken>{escape(keys[index])}</NextContinuationToken>" if truncated else ""
    body = (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>{escape(name)}</Name>'
            f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(chosen) + len(common)}</KeyCount>"
            f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            f"{contents}{folders}{following}</ListBucketResult>")
    return _answer(start_response, "200 OK", body.encode(), [("Content-Type", "application/xml")])


def _answer(start_response: Callable[..., Any], status: str, body: bytes = b"",
            headers: list[tuple[str, str]] | None = None, *, length: bool = True) -> list[bytes]:
    start_response(status, [*(headers or []), *([("Content-Length", str(len(body)))] if length else [])])
    return [body]


def _error(start_response: Callable[..., Any], status: str, code: str, method: str) -> list[bytes]:
    body = b"" if method == "HEAD" else f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
    return _answer(start_response, status, body, [("Content-Type", "application/xml")])


def served(endpoint: str) -> int:
    """How many S3 requests the endpoint has answered."""
    with urllib.request.urlopen(f"{endpoint}{COUNT_PATH}", timeout=10) as answer:
        return int(answer.read())


@contextlib.contextmanager
def started(latency: float, seed: tuple[str, str, int, int] | None = None,
            keys: tuple[str, str] | None = None) -> Iterator[str]:
    """The endpoint in a process of its own, seeded with ``(bucket, prefix, rows, size)``, or
    with ``(bucket, file)``, a file of keys, one a line; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    seeding = [*(["--seed", *map(str, seed)] if seed else []), *(["--keys", *keys] if keys else [])]
    server = subprocess.Popen([sys.executable, __file__, "--port", str(port), "--latency", str(latency), *seeding])
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                served(endpoint)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(30)


async def serve(app: FastS3, port: int) -> None:
    """Serve ``app`` (a WSGI application) on 127.0.0.1:``port``, each request after ``app.latency``."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *fields = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers = {name.strip().lower(): value.strip() for name, _, value in
                           (field.partition(":") for field in fields if field)}
                body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
                await asyncio.sleep(app.latency)
                writer.write(_respond(app, method, target, headers, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port, backlog=4096, limit=1 << 20)
    async with server:
        await server.serve_forever()


def _respond(app: FastS3, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    """The WSGI application's answer to one request, as HTTP/1.1 bytes."""
    path, _, query = target.partition("?")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": urllib.parse.unquote(path, "latin-1"), "QUERY_STRING": query,
               "CONTENT_LENGTH": headers.get("content-length", ""), "wsgi.input": io.BytesIO(body),
               **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}}
    answer: list[str] = []

    def start_response(status: str, fields: list[tuple[str, str]]) -> None:
        answer.append(f"HTTP/1.1 {status}\r\n" + "".join(f"{name}: {value}\r\n" for name, value in fields))

    content = b"".join(app(environ, start_response))
    return (answer[0] + "\r\n").encode("latin-1") + (b"" if method == "HEAD" else content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per request")
    parser.add_argument("--seed", nargs=4, metavar=("BUCKET", "PREFIX", "ROWS", "SIZE"),
                        help="create BUCKET holding PREFIX0..PREFIX<ROWS-1>, each SIZE bytes")
    parser.add_argument("--keys", nargs=2, metavar=("BUCKET", "FILE"),
                        help="create BUCKET holding the keys of FILE (one a line), each 1 byte")
    args = parser.parse_args()
    app = FastS3(args.latency)
    if args.seed:
        name, prefix, rows, size = args.seed
        bucket = app.buckets.setdefault(name, Bucket())
        for row in range(int(rows)):
            bucket.put(f"{prefix}{row}", ((b"%d " % row) * int(size))[: int(size)])
    if args.keys:
        name, file = args.keys
        bucket = app.buckets.setdefault(name, Bucket())
        with open(file, encoding="utf-8") as lines:
            for key in lines.read().splitlines():
                bucket.put(key, b"x")
    asyncio.run(serve(app, args.port))

if __name__ == "__main__":
    main()

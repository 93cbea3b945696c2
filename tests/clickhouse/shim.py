#!/usr/bin/env python3
"""A small ClickHouse HTTP front end over chDB (embedded ClickHouse), for the
collector's tests: no ClickHouse server can be installed on the test
machines, but `pip install chdb-core` can.

It speaks the part of ClickHouse's HTTP interface that the `clickhouse`
crate uses: POST (or GET) `/` with the query in the `query` parameter or in
the body; for an INSERT with the query in the URL, the body is the data
(RowBinary, RowBinaryWithNamesAndTypes, any format chDB reads), sent with
`Transfer-Encoding: chunked`; `database` and `default_format` parameters;
any other parameter is a setting (`insert_deduplication_token`, ...),
applied to that query only; user and password from `X-ClickHouse-User` /
`X-ClickHouse-Key` or basic auth, checked against --user/--password when
given. Errors answer 500 (400 for a bad request) with ClickHouse's text
(`Code: N. DB::Exception: ...`) and `X-ClickHouse-Exception-Code`, as the
crate parses them. Compression (`decompress=1`, `Accept-Encoding: lz4`) is
not supported: the collector's client sends none.

chDB runs one query at a time per process; queries are serialised.

    python3 tests/clickhouse/shim.py --port 0 --path DIR [--user U --password P]

prints `listening on http://127.0.0.1:PORT` on stdout once it serves.
"""

import argparse
import base64
import http.server
import os
import re
import sys
import tempfile
import threading
import time
import urllib.parse

from chdb import session as chdb_session

# Parameters that are not settings.
NOT_SETTINGS = {"query", "database", "default_format", "user", "password", "query_id", "session_id",
                "session_timeout", "session_check", "wait_end_of_query", "buffer_size", "role"}

LOCK = threading.Lock()
SESSION = None
ARGS = None
# Settings whose value changes what a query answers must not leak into the
# next query: they are reset to their defaults after each.
CODE_RE = re.compile(r"Code: (\d+)")
INSERT_FORMAT_RE = re.compile(r"^(\s*INSERT\s+INTO\s+.*?)\s+FORMAT\s+(\w+)\s*$", re.IGNORECASE | re.DOTALL)


def quote(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("SHIM_LOG"):
            sys.stderr.write("shim: " + (fmt % args) + "\n")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers, then the blank line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, status, message, code=0):
        m = CODE_RE.search(message)
        code = int(m.group(1)) if m else code
        if not message.startswith("Code:"):
            message = f"Code: {code}. DB::Exception: {message}"
        self.answer(status, (message.rstrip() + "\n").encode(),
                    [("Content-Type", "text/plain; charset=UTF-8"), ("X-ClickHouse-Exception-Code", str(code))])

    def authorised(self, params):
        if ARGS.user is None:
            return True
        user = self.headers.get("X-ClickHouse-User") or params.get("user")
        key = self.headers.get("X-ClickHouse-Key") or params.get("password") or ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
        return user == ARGS.user and key == (ARGS.password or "")

    def do_GET(self):
        self.handle_query(b"")

    def do_POST(self):
        self.handle_query(self.read_body())

    def handle_query(self, body):
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/ping",):
            return self.answer(200, b"Ok.\n")
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if not self.authorised(params):
            return self.fail(403, "Authentication failed: password is incorrect, or there is no user with such name", 516)
        if params.get("decompress") == "1" or params.get("compress") == "1":
            return self.fail(400, "the chDB shim does not support compression", 1)
        query = params.get("query")
        data = None
        if query is None:
            if self.headers.get("Content-Type", "").startswith("multipart/"):
                return self.fail(400, "the chDB shim does not support query parameters", 1)
            query = body.decode("utf-8")
        elif body:
            data = body
        settings = {k: v for k, v in params.items() if k not in NOT_SETTINGS and k not in ("compress", "decompress")}
        fmt = params.get("default_format") or "TabSeparated"
        tmp = None
        try:
            if data is not None:
                m = INSERT_FORMAT_RE.match(query)
                if not m:
                    return self.fail(400, "an INSERT with data must end in FORMAT <name>", 62)
                fd, tmp = tempfile.mkstemp(prefix="shim-", suffix=".bin", dir=ARGS.path)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                query = f"{m.group(1)} FROM INFILE {quote(tmp)} FORMAT {m.group(2)}"
            with LOCK:
                database = params.get("database")
                if database:
                    SESSION.query(f"USE {database}")
                for k, v in settings.items():
                    SESSION.query(f"SET {k} = {quote(v)}")
                try:
                    started = time.monotonic()
                    result = SESSION.query(query, fmt)
                    out = result.bytes() if result is not None else b""
                    if os.environ.get("SHIM_LOG"):
                        sys.stderr.write(f"shim: {time.monotonic() - started:.3f}s {len(out)}B {query[:160]!r}\n")
                finally:
                    for k in settings:
                        try:
                            SESSION.query(f"SET {k} = DEFAULT")
                        except Exception:  # noqa: BLE001 - best effort
                            pass
                    if database:
                        SESSION.query("USE default")
        except Exception as e:  # noqa: BLE001 - every error goes back to the client
            return self.fail(500, str(e))
        finally:
            if tmp:
                os.unlink(tmp)
        self.answer(200, out or b"", [("Content-Type", "application/octet-stream"),
                                      ("X-ClickHouse-Summary", "{}")])


def main():
    global SESSION, ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", required=True, help="chDB data directory (kept across restarts)")
    p.add_argument("--user")
    p.add_argument("--password")
    ARGS = p.parse_args()
    os.makedirs(ARGS.path, exist_ok=True)
    SESSION = chdb_session.Session(os.path.join(ARGS.path, "chdb"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

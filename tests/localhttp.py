"""A small HTTP server on 127.0.0.1 for the download tests: no test touches the internet.

`LocalServer` serves the bytes a test puts in `files` (path → bytes), with optional extra headers
per path, answers `Range: bytes=N-` with 206, can drop the connection part-way through a file
(`cut[path] = (bytes sent, times)`), and logs every request (`requests`: method, path, Range).
It runs in a daemon thread on a random port, every socket with a timeout, and is stopped and
joined by its context manager.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class LocalServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.cut: dict[str, tuple[int, int]] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # every socket operation of a request is bounded

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path = urlsplit(self.path).path
                wanted = self.headers.get("Range")
                server.requests.append((self.command, path, wanted))
                data = server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                for key, value in server.headers.get(path, {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not body:
                    return
                chunk = data[start:]
                sent, times = server.cut.get(path, (0, 0))
                if times > 0 and self.command == "GET":
                    server.cut[path] = (sent, times - 1)
                    chunk = chunk[:sent]  # then the connection closes: a cut download
                    self.close_connection = True
                self.wfile.write(chunk)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the GET requests for `path`, in order."""
        return [r for method, p, r in self.requests if method == "GET" and p == path]

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

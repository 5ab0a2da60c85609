"""Shared fixtures: the real model (loaded once per test session), the tiny test model, a local HTTP server."""
from __future__ import annotations

import http.server
import os
import socket
import threading

import pytest

# Tests never reach the internet: transformers and the hub client must not try (an unknown model name would
# otherwise wait for network time-outs before failing).
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of the real SmolLM2-135M-Instruct, from the offline cache."""
    from debias_utils import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the 2-layer random Llama that shares SmolLM2's tokenizer."""
    from debias_utils import load_model

    return load_model("tiny-llama")


class Server:
    """A tiny HTTP server: ``files[path] = bytes``; ``truncate`` holds paths to cut off half-way."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                # A folder-like path is an index page (pip reads only HTML there); anything else is a file.
                self.send_header("Content-Type", "text/html" if self.path.endswith("/") else "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)   # hang up mid-file
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 for download tests: fill ``server.files[path] = bytes``."""
    s = Server()
    yield s
    s.close()

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


# `make test` shares the work between two pytest-xdist workers, one notebook or test module at a time. Starting the
# longest ones first (longest-processing-time-first scheduling) keeps either worker from being left alone with a
# long notebook at the end. Ordered by their `--durations` in a fresh-clone run; everything else keeps pytest's order.
SLOWEST_FIRST = (
    "notebooks/09_compare_methods.ipynb", "notebooks/08_gate_attention/08_gate_attention.ipynb",
    "notebooks/solutions/09_compare_methods_solutions.ipynb", "notebooks/solutions/08_gate_attention_solutions.ipynb",
    "notebooks/07_decoding/try.ipynb", "notebooks/solutions/07_try_solutions.ipynb", "notebooks/06_bias_metrics.ipynb",
    "tests/test_audit.py", "notebooks/solutions/06_bias_metrics_solutions.ipynb", "notebooks/05_finetuning.ipynb",
    "tests/test_runner.py", "notebooks/04_generate.ipynb", "tests/test_models.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    # A stable sort: the cells of one notebook and the tests of one module keep their order.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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

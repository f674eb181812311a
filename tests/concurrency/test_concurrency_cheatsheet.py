"""The cheat sheet's concurrency and rate-limit examples, with only the imports changed.

Each example runs as a script in its own process (as a user runs it), after
the cheat sheet's CLI commands create its limits, against a local HTTP server
that records when each request was in flight. (The ``.map()`` example is in
``tests/public/test_seed_examples.py``; the Dask one in ``tests/runners``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CONCURRENCY_EXAMPLE = """
from kernelflow import flow, task
from kernelflow.concurrency.sync import concurrency
@task
def api_call(endpoint: str) -> dict:
    with concurrency("external-api", occupy=1):
        import httpx
        return httpx.get(endpoint).json()
@flow
def batch_requests(endpoints: list[str]) -> list[dict]:
    futures = [api_call.submit(ep) for ep in endpoints]
    return [f.result() for f in futures]
"""

RATE_LIMIT_EXAMPLE = """
from kernelflow import flow, task
from kernelflow.concurrency.sync import rate_limit, concurrency
@task
def call_third_party(endpoint: str) -> dict:
    # Soft concurrency cap (max 5 in-flight)
    with concurrency("third-party", occupy=1):
        # Hard rate limit (10 requests / second)
        rate_limit("third-party-rps", occupy=1)
        import httpx
        return httpx.get(endpoint, timeout=5).json()
@flow
def fanout(endpoints: list[str]):
    futures = [call_third_party.submit(e) for e in endpoints]
    return [f.result() for f in futures]
"""


class RecordingServer:
    """A local JSON API that answers slowly and records each request's start and end."""

    def __init__(self, delay: float) -> None:
        self.requests: list[tuple[float, float]] = []
        self.in_flight = 0
        self.peak = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                start = time.monotonic()
                with lock:
                    outer.in_flight += 1
                    outer.peak = max(outer.peak, outer.in_flight)
                time.sleep(delay)
                body = json.dumps({"path": self.path}).encode()
                with lock:
                    outer.in_flight -= 1
                    outer.requests.append((start, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def urls(self, count: int) -> list[str]:
        host, port = self.server.server_address[:2]
        return [f"http://{host}:{port}/items/{i}" for i in range(count)]


def env() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), environment.get("PYTHONPATH", "")) if p
    )
    environment["KERNELFLOW_LOGGING_LEVEL"] = "WARNING"
    return environment


def cli(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kernelflow.cli", *args],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def run_example(tmp_path: Path, example: str, call: str) -> object:
    script = tmp_path / "example.py"
    # The harness imports the examples' HTTP client before the flow starts: on
    # a busy machine a first import inside the first task delays only that
    # request, which would blur the timings the tests check.
    script.write_text(
        "import httpx  # noqa: F401\n"
        + example
        + textwrap.dedent(f"""
        import json, sys
        print(json.dumps({call}(json.loads(sys.argv[1]))))
    """)
    )

    def run(urls: list[str]) -> list:
        done = subprocess.run(
            [sys.executable, str(script), json.dumps(urls)],
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


@pytest.mark.slow
def test_concurrency_limit_example(tmp_path):
    cli("concurrency-limit", "create", "external-api", "5")
    run = run_example(tmp_path, CONCURRENCY_EXAMPLE, "batch_requests")
    with RecordingServer(delay=0.05) as server:
        urls = server.urls(24)
        results = run(urls)
    assert results == [{"path": f"/items/{i}"} for i in range(24)]
    # The default runner starts all 24 at once (no thread bound, as in Prefect): the limit
    # alone keeps at most 5 in flight.
    assert 2 <= server.peak <= 5


@pytest.mark.slow
def test_rate_limit_example(tmp_path):
    cli("concurrency-limit", "create", "third-party", "5")
    cli("gcl", "create", "third-party-rps", "--limit", "10", "--slot-decay-per-second", "10")
    run = run_example(tmp_path, RATE_LIMIT_EXAMPLE, "fanout")
    with RecordingServer(delay=0.01) as server:
        results = run(server.urls(25))
        starts = sorted(start for start, _ in server.requests)
    assert results == [{"path": f"/items/{i}"} for i in range(25)]
    assert server.peak <= 5
    # A burst of at most 10, then at most 10 a second: any k requests span at
    # least (k - 10) / 10 seconds. The server sees a request some time after its
    # slot was taken (the first ones also import httpx, and on a loaded 2-core
    # machine 25 threads wait for the GIL), hence the slack; without the rate
    # limit all 25 would arrive within about 0.1 s, failing the last pairs by ~1 s.
    offsets = [round(s - starts[0], 3) for s in starts]
    for i in range(len(starts)):
        for j in range(i + 10, len(starts)):
            assert starts[j] - starts[i] >= (j - i + 1 - 10) / 10 - 0.5, (i, j, offsets)
    assert starts[-1] - starts[0] >= 1.0, offsets

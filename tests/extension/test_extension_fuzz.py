"""Fuzzing the REST API (hypothesis) through one real in-process Jupyter server.

Every endpoint gets garbage: query parameters that are negative, huge, not numbers,
unicode, repeated or badly percent-encoded; run ids of any shape; and every method
with JSON and non-JSON bodies. The answer is 2xx, or 4xx with a JSON ``message``;
never a 5xx. Afterwards the runs recorded before are all still there, unchanged.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tornado.escape import url_escape

from kernelflow import flow, get_run_logger, task
from kernelflow.extension.handlers import routes

pytestmark = pytest.mark.timeout(180)


@task
def double(x: int) -> int:
    get_run_logger().info("doubling %d", x)
    return 2 * x


@task
def fail() -> None:
    raise ValueError("on purpose")


@flow(name="fuzzed")
def fuzzed(n: int = 2) -> int:
    return sum(double(i) for i in range(n))


@flow(name="fuzzed-failing")
def fuzzed_failing() -> None:
    fail()


PARAMETERS = [
    "limit",
    "offset",
    "log_limit",
    "log_offset",
    "state",
    "flow",
    "page",
    "id",
    "Limit",
    "path",
]
GARBAGE = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "500",
            "501",
            "10000",
            "10001",
            "1000000000",
            "1000000001",
            "9" * 40,
            "9" * 5000,
            "1e3",
            "1.5",
            " 7 ",
            "+3",
            "0x10",
            "1_0",
            "٣",
            "nan",
            "-inf",
            "Completed",
            "completed",
            "CACHED",
            "Failed ",
            "fuzzed",
            "%",
            "_",
            "'; DROP TABLE flow_runs; --",
            "\x00",
            "\u2028",
            "名前",
            "../x.ipynb",
            "/etc/passwd",
            "a.ipynb",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
)
RAW_QUERIES = st.sampled_from(
    ["limit=%ff", "limit=%", "offset=%zz", "&&", "=1", "limit", "state=%C3%28", "flow=%00", ";;"]
)
RUN_IDS = st.one_of(
    st.sampled_from(["", "0", "-", "%", "_", "..", "0000dead-beef", "%2F", "%ff", "%zz", "a/b"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40).map(
        lambda s: url_escape(s, plus=False)
    ),
    st.just("{known}"),  # a real run's id, or a prefix of it
)
ENDPOINTS = st.sampled_from(
    [
        "runs",
        "runs/{id}",
        "runs/{id}/logs",
        "deployments",
        "health",
        "runs/{id}/x",
        "nothing",
        "runs/{id}/cancel",
        "runs/{id}/rerun",
        "runs/{id}/resume",
        "runs/{id}/notebook",
        "runs/{id}/html",
        "deployments/{id}",
        "deployments/{id}/runs",
        "scheduler",
        "schedule/preview",
        "notebooks/parameters",
    ]
)
BODIES = st.one_of(
    st.none(),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=8,
    ).map(json.dumps),
    st.binary(max_size=40),
)


@pytest.fixture
def recorded(store: Any) -> Iterator[list[dict[str, Any]]]:
    """Runs recorded before the fuzzing, checked again after it: all there, unchanged."""
    assert fuzzed(n=3) == 6
    assert fuzzed_failing(return_state=True).is_failed()
    before = runs_now(store)
    assert [r["flow_name"] for r in before] == ["fuzzed", "fuzzed-failing"]
    yield before
    assert runs_now(store) == before


def runs_now(store: Any) -> list[dict[str, Any]]:
    frame = store.sql("SELECT id, flow_name, state_name, end_time FROM flow_runs ORDER BY id")
    return frame.to_dict("records")


def ours(base_url: str, url: str) -> bool:
    """Whether one of our handlers answers ``url`` (matched as tornado matches routes)."""
    path = url.split("?", 1)[0]
    return any(re.fullmatch(pattern, path) for pattern, _handler in routes(base_url))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    endpoint=ENDPOINTS,
    run_id=RUN_IDS,
    cut=st.integers(min_value=0, max_value=36),
    params=st.lists(st.tuples(st.sampled_from(PARAMETERS), GARBAGE), max_size=4),
    raw=st.lists(RAW_QUERIES, max_size=2),
    method=st.sampled_from(["GET"] * 6 + ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    body=BODIES,
)
def test_garbage_in_is_never_a_server_error(
    http_server_client: Any,
    jp_asyncio_loop: Any,
    jp_auth_header: dict[str, str],
    jp_base_url: str,
    recorded: list[dict[str, Any]],
    store: Any,
    endpoint: str,
    run_id: str,
    cut: int,
    params: list[tuple[str, str]],
    raw: list[str],
    method: str,
    body: Any,
) -> None:
    if run_id == "{known}":
        run_id = recorded[cut % len(recorded)]["id"][: 36 - cut % 30]
    path = endpoint.replace("{id}", run_id)
    query = "&".join([urllib.parse.urlencode(params), *raw])
    url = f"{jp_base_url}kernelflow/api/{path}?{query}"
    if method in ("GET", "HEAD", "OPTIONS") and body is not None:
        body = None
    elif method in ("POST", "PUT", "PATCH") and body is None:
        body = b""
    response = jp_asyncio_loop.run_until_complete(
        http_server_client.fetch(
            url,
            method=method,
            body=body,
            headers=dict(jp_auth_header),
            raise_error=False,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            request_timeout=30,
        )
    )
    assert response.code < 500, (method, url, response.code, response.body[:500])
    event(f"{method if method == 'GET' else 'other'} {response.code}")
    if method != "GET":  # (after GETs, the fixture checks the runs once, at the end)
        assert runs_now(store) == recorded
    if method in ("HEAD", "OPTIONS") or response.code < 200 or 300 <= response.code < 400:
        return  # no body to check; a redirect (jupyter_server drops a trailing slash)
    if not ours(jp_base_url, url):
        return  # no handler of ours: jupyter_server's own page
    if 400 <= response.code:
        answer = json.loads(response.body)
        assert isinstance(answer["message"], str) and answer["message"], answer
    else:
        # A GET, or a schedule preview that happened to be valid: it changes nothing.
        assert response.code == 200, (method, url)
        assert method == "GET" or path == "schedule/preview", (method, url)
        assert response.headers["Content-Type"].startswith("application/json")
        json.loads(response.body)


def test_the_runs_are_all_still_there(
    http_server_client: Any,
    jp_asyncio_loop: Any,
    jp_auth_header: dict[str, str],
    jp_base_url: str,
    recorded: list[dict[str, Any]],
    store: Any,
) -> None:
    """After garbage on every endpoint, each run recorded before answers as before."""
    garbage = [
        ("GET", "runs?limit=-1&offset=%ff&state=nope&flow=%00"),
        ("DELETE", "runs"),
        ("POST", "runs"),
        ("PUT", f"runs/{recorded[0]['id']}"),
        ("DELETE", f"runs/{recorded[0]['id']}"),
        ("PATCH", f"runs/{recorded[1]['id']}/logs"),
        ("GET", "runs/%25?log_limit=0"),
        ("POST", "deployments"),
        ("POST", f"runs/{recorded[0]['id']}/cancel"),
        ("POST", f"runs/{recorded[1]['id']}/rerun"),
        ("POST", f"runs/{recorded[0]['id']}/resume"),
        ("GET", f"runs/{recorded[0]['id']}/notebook"),
        ("PATCH", "deployments/fuzzed"),
        ("DELETE", "deployments/fuzzed"),
        ("POST", "deployments/fuzzed/runs"),
        ("POST", "schedule/preview"),
    ]

    def fetch(method: str, path: str) -> Any:
        return jp_asyncio_loop.run_until_complete(
            http_server_client.fetch(
                f"{jp_base_url}kernelflow/api/{path}",
                method=method,
                body=None if method == "GET" else b'{"state": "Cancelled"}',
                headers=dict(jp_auth_header),
                raise_error=False,
                allow_nonstandard_methods=True,
            )
        )

    for method, path in garbage:
        response = fetch(method, path)
        assert 400 <= response.code < 500, (method, path, response.code)
        assert json.loads(response.body)["message"]
    assert runs_now(store) == recorded
    listed = json.loads(fetch("GET", "runs").body)["runs"]
    assert sorted(r["id"] for r in listed) == [r["id"] for r in recorded]
    for run in recorded:
        detail = json.loads(fetch("GET", f"runs/{run['id']}").body)
        assert (detail["run"]["id"], detail["run"]["state_name"]) == (run["id"], run["state_name"])

"""Authorization: every REST handler asks the server's configured Authorizer.

The in-process Jupyter server is started with a custom ``Authorizer`` (as
read-only sharing or JupyterHub scopes would configure one) that records each
question and refuses some: a refused request is a 403 with one line, never a
500; an allowed one is a 200; an unauthenticated one is a 403 before the
Authorizer is asked.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from kernelflow.extension.handlers import (
    DEPLOYMENTS_RESOURCE,
    HEALTH_RESOURCE,
    RUNS_RESOURCE,
    routes,
)

pytestmark = pytest.mark.timeout(120)


class RunsOnlyAuthorizer(Authorizer):
    """Allows reading runs only: no deployments, no health, and no action but ``read``."""

    asked: ClassVar[list[tuple[str, str]]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        type(self).asked.append((action, resource))
        return action == "read" and resource == RUNS_RESOURCE


class DenyAllAuthorizer(Authorizer):
    """Refuses everything, as a server shared with nobody would."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return False


#: Every read endpoint, with a run id that need not exist (authorization comes first).
ENDPOINTS = [
    "runs",
    "runs/abc",
    "runs/abc/logs",
    "runs/abc/notebook",
    "runs/abc/html",
    "deployments",
    "scheduler",
    "notebooks/parameters",
    "health",
]
#: Every write endpoint: (method, path, the action asked, on which resource).
ACTIONS = [
    ("POST", "deployments", "write", DEPLOYMENTS_RESOURCE),
    ("PATCH", "deployments/daily", "write", DEPLOYMENTS_RESOURCE),
    ("DELETE", "deployments/daily", "write", DEPLOYMENTS_RESOURCE),
    ("POST", "deployments/daily/runs", "execute", DEPLOYMENTS_RESOURCE),
    ("POST", "schedule/preview", "read", DEPLOYMENTS_RESOURCE),
    ("POST", "runs/abc/cancel", "write", RUNS_RESOURCE),
    ("POST", "runs/abc/rerun", "execute", DEPLOYMENTS_RESOURCE),
    ("POST", "runs/abc/resume", "write", RUNS_RESOURCE),
]


def test_the_endpoints_listed_here_are_every_route() -> None:
    # A new handler must be added to ENDPOINTS or ACTIONS, so the deny-all tests cover it.
    paths = ["/kernelflow/api/" + p for p in ENDPOINTS + [a[1] for a in ACTIONS]]
    for pattern, handler in routes("/"):
        assert any(re.fullmatch(pattern, path) for path in paths), handler.__name__


async def get(jp_fetch: Any, path: str) -> Any:
    return await jp_fetch("kernelflow", "api", *path.split("/"))


async def refused(jp_fetch: Any, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kernelflow", "api", *path.split("/"), **kwargs)
    return caught.value.code, json.loads(caught.value.response.body or b"{}")


def with_body(method: str) -> dict[str, Any]:
    return {"method": method, **({} if method in ("GET", "DELETE") else {"body": b"{}"})}


class TestARunsOnlyAuthorizer:
    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        RunsOnlyAuthorizer.asked = []
        return {
            "ServerApp": {
                "jpserver_extensions": {"kernelflow": True},
                "authorizer_class": RunsOnlyAuthorizer,
            }
        }

    async def test_reading_runs_is_allowed(self, jp_fetch: Any) -> None:
        response = await get(jp_fetch, "runs")
        assert response.code == 200
        assert json.loads(response.body)["runs"] == []
        assert ("read", RUNS_RESOURCE) in RunsOnlyAuthorizer.asked

    async def test_a_run_and_its_logs_are_runs_too(self, jp_fetch: Any) -> None:
        for path in ("runs/0000dead", "runs/0000dead/logs"):
            code, body = await refused(jp_fetch, path)
            assert code == 404 and body["reason"] == "RunNotFoundError"  # allowed, then not found
        assert RunsOnlyAuthorizer.asked.count(("read", RUNS_RESOURCE)) == 2

    @pytest.mark.parametrize(
        ("path", "resource"),
        [("deployments", DEPLOYMENTS_RESOURCE), ("health", HEALTH_RESOURCE)],
    )
    async def test_other_resources_are_refused_with_403(
        self, jp_fetch: Any, path: str, resource: str
    ) -> None:
        code, body = await refused(jp_fetch, path)
        assert code == 403
        assert body["message"] == f"User is not authorized to read on resource: {resource}."
        assert RunsOnlyAuthorizer.asked == [("read", resource)]

    @pytest.mark.parametrize("path", ENDPOINTS)
    async def test_without_a_token_the_authorizer_is_not_even_asked(
        self, jp_fetch: Any, path: str
    ) -> None:
        code, _ = await refused(jp_fetch, path, headers={"Authorization": "token wrong"})
        assert code == 403
        assert RunsOnlyAuthorizer.asked == []

    @pytest.mark.parametrize(("method", "path", "action", "resource"), ACTIONS)
    async def test_actions_need_their_own_permission(
        self, jp_fetch: Any, method: str, path: str, action: str, resource: str
    ) -> None:
        code, body = await refused(jp_fetch, path, **with_body(method))
        assert code == 403
        assert body["message"] == f"User is not authorized to {action} on resource: {resource}."
        assert RunsOnlyAuthorizer.asked == [(action, resource)]
        code, _ = await refused(
            jp_fetch, path, headers={"Authorization": "token wrong"}, **with_body(method)
        )
        assert code == 403


class TestADenyAllAuthorizer:
    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {"kernelflow": True},
                "authorizer_class": DenyAllAuthorizer,
            }
        }

    @pytest.mark.parametrize("path", ENDPOINTS)
    async def test_every_endpoint_is_403_never_500(self, jp_fetch: Any, path: str) -> None:
        code, body = await refused(jp_fetch, path)
        assert code == 403
        assert body["message"].startswith("User is not authorized to read on resource: ")
        assert "\n" not in body["message"]

    @pytest.mark.parametrize(("method", "path", "action", "resource"), ACTIONS)
    async def test_every_action_is_403_never_500(
        self, jp_fetch: Any, method: str, path: str, action: str, resource: str
    ) -> None:
        code, body = await refused(jp_fetch, path, **with_body(method))
        assert code == 403
        assert body["message"] == f"User is not authorized to {action} on resource: {resource}."


class TestXsrf:
    """With a login cookie (as the browser has), a write needs the XSRF token too."""

    async def test_a_cookie_without_the_xsrf_token_is_refused(
        self, http_server_client: Any, jp_base_url: str, jp_auth_header: dict[str, str]
    ) -> None:
        token = jp_auth_header["Authorization"].split(" ", 1)[1]
        login = await http_server_client.fetch(
            f"{jp_base_url}api/status?token={token}", raise_error=False
        )
        cookies = [c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie")]
        assert any(c.startswith("username-") for c in cookies), cookies
        url = f"{jp_base_url}kernelflow/api/schedule/preview"
        body = json.dumps({"interval": 60})

        async def post(headers: dict[str, str]) -> Any:
            return await http_server_client.fetch(
                url, method="POST", body=body, headers=headers, raise_error=False
            )

        cookie = "; ".join(cookies)
        refused = await post({"Cookie": cookie})
        assert refused.code == 403 and b"_xsrf" in refused.body
        xsrf = "kernelflowxsrf"
        allowed = await post({"Cookie": f"{cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf})
        assert allowed.code == 200, allowed.body
        assert json.loads(allowed.body)["description"] == "Every minute"
        by_token = await post(dict(jp_auth_header))  # token auth needs no XSRF token
        assert by_token.code == 200

"""``GET runs/<id>/html``: the HTML copy of a run's executed notebook, made on first request.

A deployment worker writes only the executed notebook; the server renders
its HTML copy the first time the panel (or any client) asks, keeps it next
to the notebook, and renders again when the notebook is newer. Runs are
queued with this server's scheduler off and their notebook written as a
worker writes it, so no kernel starts here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from kernelflow import settings

pytestmark = pytest.mark.timeout(120)


#: The extension without its scheduler (see conftest's ``jp_server_config``).
KERNELFLOW_APP = {"run_scheduler": False}


def write_notebook(path: Path, printed: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    )
    params = nbformat.v4.new_code_cell("n: int = 2", metadata={"tags": ["parameters"]})
    cell = nbformat.v4.new_code_cell("print(n * 2)", execution_count=1)
    if printed is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells = [params, cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


async def api(jp_fetch: Any, method: str, *parts: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    return await jp_fetch("kernelflow", "api", *parts, **kwargs)


async def queued_run(jp_fetch: Any, jp_root_dir: Path) -> str:
    """A deployment run, queued (no kernel): its id."""
    write_notebook(jp_root_dir / "report.ipynb")
    body = {"notebook": "report.ipynb", "name": "daily", "interval": "1h"}
    assert (await api(jp_fetch, "POST", "deployments", body=body)).code == 201
    response = await api(jp_fetch, "POST", "deployments", "daily", "runs", body={})
    return str(json.loads(response.body)["run_id"])


async def test_rendered_on_first_request_kept_and_remade_when_stale(
    jp_fetch: Any, jp_root_dir: Path
) -> None:
    run_id = await queued_run(jp_fetch, jp_root_dir)
    detail = json.loads((await api(jp_fetch, "GET", "runs", run_id)).body)["run"]
    assert detail["has_notebook"] is False and detail["has_html"] is False

    # What the worker leaves: the executed notebook alone.
    notebook = write_notebook(
        settings.paths().outputs / "daily" / f"{run_id}.ipynb", printed="value 4\n"
    )
    html = notebook.with_suffix(".html")
    detail = json.loads((await api(jp_fetch, "GET", "runs", run_id)).body)["run"]
    assert detail["has_notebook"] is True and detail["has_html"] is True
    assert not html.exists()

    response = await api(jp_fetch, "GET", "runs", run_id, "html")
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.body.startswith(b"<!DOCTYPE html>") and b"value 4" in response.body
    assert html.read_bytes() == response.body  # kept for the next request

    made = html.stat().st_mtime_ns
    again = await api(jp_fetch, "GET", "runs", run_id, "html")
    assert again.body == response.body and html.stat().st_mtime_ns == made  # not rendered again

    # A retry rewrites the notebook: the next request renders it again.
    old = html.stat().st_mtime - 60
    os.utime(html, (old, old))
    write_notebook(notebook, printed="value 6\n")
    response = await api(jp_fetch, "GET", "runs", run_id, "html")
    assert b"value 6" in response.body and b"value 4" not in response.body


async def test_a_notebook_that_cannot_be_rendered_is_a_one_line_404(
    jp_fetch: Any, jp_root_dir: Path
) -> None:
    run_id = await queued_run(jp_fetch, jp_root_dir)
    outputs = settings.paths().outputs / "daily"
    outputs.mkdir(parents=True)
    (outputs / f"{run_id}.ipynb").write_text("{not a notebook")
    with pytest.raises(HTTPClientError) as caught:
        await api(jp_fetch, "GET", "runs", run_id, "html")
    answer = json.loads(caught.value.response.body)
    assert caught.value.code == 404 and "\n" not in answer["message"]
    assert "cannot be shown as HTML" in answer["message"]

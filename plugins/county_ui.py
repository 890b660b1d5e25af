"""The county's reports inside the Airflow UI.

The pipeline writes its run report to `$DATA_DIR/reports/index.html` and one offline GX Data
Docs site per run to `$DATA_DIR/reports/datadocs/<run_key>/` (transforms.outputs.reports).
This plugin
serves that folder from the API server under /county-reports/ and links it from the UI: the run
report under Browse, and a "Data Docs" tab on every run of `county_daily`.

The pages are only served to a signed-in user allowed to read the DAG's runs (the same JWT the
UI uses, from its cookie or an Authorization header): masked as they are, they describe the
county's households. Only regular files inside the reports folder are served; links are not
followed.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

URL_PREFIX = "/county-reports"
DAG_ID = "county_daily"
RUN_REPORT = "index.html"
DATA_DOCS_FOLDER = "datadocs"
_NO_REPORT = (
    "<!doctype html><meta charset='utf-8'><title>运行报告 Run report</title>"
    "<p>还没有运行报告：流水线完成一次运行后生成。</p>"
    "<p>No run report yet: the pipeline writes it when a run finishes.</p>"
)
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def reports_dir() -> Path:
    """$DATA_DIR/reports, read per request so that the API server needs no restart."""
    from transforms.config.settings import load_settings

    return load_settings().reports_dir


def run_key(run_id: str) -> str:
    # Same rule as transforms.pipeline.steps.run_key; repeated to keep pandas out of the API server.
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", run_id)


def resolve_report_file(root: Path, rel: str) -> Path | None:
    """The regular file `rel` names inside `root` (a folder means its index.html), or None.

    None for anything outside the root, any symbolic link on the way, hidden names and
    anything that is not a regular file.
    """
    parts = [p for p in rel.split("/") if p]
    if any(p in (".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            return None
    if path.is_dir():
        path = path / RUN_REPORT
        if path.is_symlink():
            return None
    if not path.is_file():
        return None
    real_root = root.resolve()
    return path if path.resolve().is_relative_to(real_root) else None


async def require_run_reader(request: Request) -> None:
    """Signed in, and allowed to read the runs of county_daily (the reports describe them)."""
    # Imported here: every Airflow process loads plugins, only the API server serves requests.
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPBearer

    credentials = await HTTPBearer(auto_error=False)(request)
    user = await get_user(request, None, credentials)
    allowed = get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=DAG_ID),
        user=user,
    )
    if not allowed:
        raise HTTPException(status_code=403, detail="Forbidden")


def create_reports_app(root: Path | None = None) -> FastAPI:
    """The sub-application mounted at URL_PREFIX; `root` overrides DATA_DIR/reports (tests)."""
    app = FastAPI(
        title="County reports",
        description="The run report and Data Docs of the county pipeline",
        dependencies=[Depends(require_run_reader)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def folder() -> Path:
        return root if root is not None else reports_dir()

    @app.get("/runs/{run_id:path}/datadocs", response_model=None)
    def data_docs_of_run(run_id: str, request: Request) -> Response:
        key = run_key(run_id)
        base = request.scope.get("root_path", "").rstrip("/")
        counties = [
            c.name
            for c in sorted(folder().iterdir() if folder().is_dir() else [])
            if c.is_dir()
            and not c.is_symlink()
            and resolve_report_file(c, f"{DATA_DOCS_FOLDER}/{key}/index.html") is not None
        ]
        if counties:  # a deployment of several counties: the run has Data Docs per county
            links = "".join(
                f"<li><a href='{base}/{html.escape(c)}/{DATA_DOCS_FOLDER}/{key}/index.html'>"
                f"{html.escape(c)}</a></li>"
                for c in counties
            )
            return HTMLResponse(
                "<!doctype html><meta charset='utf-8'><title>Data Docs</title>"
                f"<p>各县的 Data Docs / Data Docs per county:</p><ul>{links}</ul>",
                headers=_HEADERS,
            )
        if resolve_report_file(folder(), f"{DATA_DOCS_FOLDER}/{key}/index.html") is None:
            return HTMLResponse(
                "<!doctype html><meta charset='utf-8'><title>Data Docs</title>"
                "<p>这次运行没有 Data Docs（没有文件通过校验步骤）。</p>"
                "<p>No Data Docs for this run (no file reached validation).</p>",
                status_code=404,
                headers=_HEADERS,
            )
        return RedirectResponse(
            f"{base}/{DATA_DOCS_FOLDER}/{key}/index.html", status_code=307, headers=_HEADERS
        )

    @app.get("/", response_model=None)
    def run_report() -> Response:
        path = resolve_report_file(folder(), RUN_REPORT)
        if path is None:
            return HTMLResponse(_NO_REPORT, status_code=404, headers=_HEADERS)
        return FileResponse(path, headers=_HEADERS)

    @app.get("/{rel:path}", response_model=None)
    def report_file(rel: str) -> Response:
        path = resolve_report_file(folder(), rel)
        if path is None:
            raise HTTPException(status_code=404, detail="Not Found")
        return FileResponse(path, headers=_HEADERS)

    return app


def _external_views() -> list[dict[str, Any]]:
    return [
        {
            "name": "运行报告 Run report",
            "href": f"{URL_PREFIX}/",
            "url_route": "county-run-report",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Data Docs",
            "href": f"{URL_PREFIX}/runs/{{RUN_ID}}/datadocs",
            "url_route": "county-data-docs",
            "destination": "dag_run",
        },
    ]


class CountyReportsPlugin(AirflowPlugin):
    name = "county_reports"
    # AirflowPlugin declares these as plain class attributes; the plugin manager reads them there.
    fastapi_apps = [  # noqa: RUF012
        {"app": create_reports_app(), "url_prefix": URL_PREFIX, "name": "county_reports"}
    ]
    external_views = _external_views()

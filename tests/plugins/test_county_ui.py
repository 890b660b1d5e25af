"""The reports plugin: what it serves, to whom, and how Airflow loads it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from plugin_modules import PLUGINS_DIR, county_ui

CountyReportsPlugin = county_ui.CountyReportsPlugin
create_reports_app = county_ui.create_reports_app
resolve_report_file = county_ui.resolve_report_file
RUN_ID = "manual__2026-11-28T00:00:00+08:00"
RUN_KEY = "manual__2026-11-28T00_00_00_08_00"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    (root / "datadocs" / RUN_KEY).mkdir(parents=True)
    (root / "index.html").write_text("<h1>运行报告</h1>", encoding="utf-8")
    (root / "datadocs" / RUN_KEY / "index.html").write_text("<h1>docs</h1>", encoding="utf-8")
    (root / "assets").mkdir()
    (root / "assets" / "style.css").write_text("body{}", encoding="utf-8")
    (root / ".hidden").write_text("no", encoding="utf-8")
    (tmp_path / "outside.html").write_text("secret", encoding="utf-8")
    (root / "link.html").symlink_to(tmp_path / "outside.html")
    return root


@pytest.fixture
def client(reports: Path) -> Iterator[TestClient]:
    """The app with the permission check passed, as for a signed-in reader."""
    app = create_reports_app(reports)
    app.dependency_overrides[county_ui.require_run_reader] = lambda: None
    with TestClient(app, root_path="/county-reports") as c:
        yield c


def test_run_report_and_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.text == "<h1>运行报告</h1>"
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    css = client.get("/assets/style.css")
    assert (css.status_code, css.text) == (200, "body{}")
    assert css.headers["content-type"].startswith("text/css")
    folder = client.get(f"/datadocs/{RUN_KEY}/")
    assert (folder.status_code, folder.text) == (200, "<h1>docs</h1>")


def test_data_docs_of_a_run_redirect_to_its_site(client: TestClient) -> None:
    response = client.get(f"/runs/{RUN_ID.replace('+', '%2B')}/datadocs", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"/county-reports/datadocs/{RUN_KEY}/index.html"
    missing = client.get("/runs/scheduled__2026-01-01/datadocs", follow_redirects=False)
    assert missing.status_code == 404
    assert "No Data Docs for this run" in missing.text


def test_data_docs_of_a_run_of_several_counties_are_listed(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    for county in ("lankao", "qixian"):
        (root / county / "datadocs" / RUN_KEY).mkdir(parents=True)
        (root / county / "datadocs" / RUN_KEY / "index.html").write_text("d", encoding="utf-8")
    (root / "weishi").mkdir()  # no Data Docs for this run
    app = create_reports_app(root)
    app.dependency_overrides[county_ui.require_run_reader] = lambda: None
    with TestClient(app, root_path="/county-reports") as c:
        page = c.get(f"/runs/{RUN_ID.replace('+', '%2B')}/datadocs", follow_redirects=False)
        assert page.status_code == 200
        assert f"/county-reports/lankao/datadocs/{RUN_KEY}/index.html" in page.text
        assert f"/county-reports/qixian/datadocs/{RUN_KEY}/index.html" in page.text
        assert "weishi" not in page.text
        assert c.get(f"/qixian/datadocs/{RUN_KEY}/index.html").text == "d"


@pytest.mark.parametrize(
    "path",
    ["/link.html", "/.hidden", "/../outside.html", "/%2e%2e/outside.html", "/nope.html", "/assets"],
)
def test_nothing_outside_the_reports_or_behind_links_is_served(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "secret" not in response.text


def test_resolve_report_file(reports: Path) -> None:
    assert resolve_report_file(reports, "") == reports / "index.html"
    assert resolve_report_file(reports, "assets/style.css") == reports / "assets" / "style.css"
    for bad in ("../outside.html", "link.html", ".hidden", "assets/../../outside.html", "a\\b"):
        assert resolve_report_file(reports, bad) is None, bad
    linked_dir = reports / "docs-link"
    linked_dir.symlink_to(reports / "datadocs")
    assert resolve_report_file(reports, f"docs-link/{RUN_KEY}/index.html") is None


def test_no_report_yet(tmp_path: Path) -> None:
    app = create_reports_app(tmp_path)
    app.dependency_overrides[county_ui.require_run_reader] = lambda: None
    with TestClient(app) as c:
        response = c.get("/")
    assert response.status_code == 404
    assert "No run report yet" in response.text


def test_anonymous_requests_are_refused(reports: Path) -> None:
    with TestClient(create_reports_app(reports)) as c:
        for path in ("/", "/assets/style.css", f"/runs/{RUN_ID}/datadocs"):
            assert c.get(path, follow_redirects=False).status_code == 401, path


class _AuthManager:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        self.calls: list[dict[str, Any]] = []

    def is_authorized_dag(self, **kwargs: Any) -> bool:
        self.calls.append(kwargs)
        return self.allowed


@pytest.mark.parametrize("allowed", [True, False])
def test_readers_of_the_dags_runs_only(
    reports: Path, monkeypatch: pytest.MonkeyPatch, allowed: bool
) -> None:
    from airflow.api_fastapi import app as api_app
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.api_fastapi.core_api import security

    user = SimpleNamespace(name="clerk")
    seen_tokens: list[str | None] = []

    async def get_user(request: Any, _oauth: Any, credentials: Any) -> Any:
        seen_tokens.append(credentials.credentials if credentials else None)
        return user

    manager = _AuthManager(allowed)
    monkeypatch.setattr(security, "get_user", get_user)
    monkeypatch.setattr(api_app, "get_auth_manager", lambda: manager)
    with TestClient(create_reports_app(reports)) as c:
        response = c.get("/", headers={"Authorization": "Bearer the-jwt"})
    assert response.status_code == (200 if allowed else 403)
    assert seen_tokens == ["the-jwt"]
    assert manager.calls == [
        {
            "method": "GET",
            "access_entity": DagAccessEntity.RUN,
            "details": DagDetails(id="county_daily"),
            "user": user,
        }
    ]


def test_plugin_declares_the_app_and_the_ui_links() -> None:
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES

    (app,) = CountyReportsPlugin.fastapi_apps
    assert app["url_prefix"] == "/county-reports"
    assert not any(app["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    assert CountyReportsPlugin.external_views == [
        {
            "name": "运行报告 Run report",
            "href": "/county-reports/",
            "url_route": "county-run-report",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Data Docs",
            "href": "/county-reports/runs/{RUN_ID}/datadocs",
            "url_route": "county-data-docs",
            "destination": "dag_run",
        },
    ]


def test_airflow_loads_the_plugins_folder_without_errors() -> None:
    from airflow._shared.plugins_manager import _load_plugins_from_plugin_directory
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    plugins, errors = _load_plugins_from_plugin_directory(str(PLUGINS_DIR))
    assert errors == {}
    assert [p.name for p in plugins] == ["county_reports"]
    # the API server's own model accepts the views (as /api/v2/plugins will serve them)
    for view in plugins[0].external_views:
        ExternalViewResponse.model_validate(view)
    assert "county_ui.py" in str(plugins[0].source)

"""`GET /admin/config` through the real app, and the hook access control uses to protect it."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.requests import Request

from gateway.api.app import create_app
from gateway.api.state import app_state
from gateway.errors import Unauthorized
from tests.support.harness import CLIENT_TIMEOUT, running_gateway
from tests.support.reload_support import ROUTES_YAML, provider_yaml


def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "routes"
    directory.mkdir()
    (directory / "routes.yaml").write_text(ROUTES_YAML)
    (directory / "providers.yaml").write_text(provider_yaml("v1"))
    return directory


def test_admin_config_reports_the_served_config(tmp_path: Path) -> None:
    directory = config_dir(tmp_path)
    with (
        running_gateway(directory, reload=False) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        response = client.get("/admin/config")
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        status = response.json()
    runtime_version = status["version"]
    assert len(runtime_version) == 12
    assert status["sources"] == [str(directory / "providers.yaml"), str(directory / "routes.yaml")]
    assert status["paths"] == [str(directory)]
    assert (status["routes"], status["providers"]) == (1, 1)
    assert (status["reload_count"], status["reload_attempts"], status["rejected_count"]) == (0, 0, 0)
    assert (status["watching"], status["sighup"]) == (False, False)  # not the main thread: no SIGHUP
    assert status["last_error"] is None and status["last_reload"] is None
    assert status["serving_last_good"] is False
    assert status["in_flight"] == 1  # this request
    assert status["loaded_at"].endswith("Z")


def test_admin_guard_runs_before_the_report(tmp_path: Path) -> None:
    app = create_app(config_dir(tmp_path), reload=False)
    seen: list[str] = []

    async def guard(request: Request) -> None:
        seen.append(request.headers.get("x-admin", ""))
        if request.headers.get("x-admin") != "yes":
            raise Unauthorized("admin key required")

    with running_gateway(app=app) as gateway:
        app_state(app).admin_guard = guard  # what access control installs in the lifespan
        with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            denied = client.get("/admin/config")
            allowed = client.get("/admin/config", headers={"x-admin": "yes"})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    assert "version" not in denied.text
    assert allowed.status_code == 200 and "version" in allowed.json()
    assert seen == ["", "yes"]

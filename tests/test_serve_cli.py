"""``medknn serve`` on the command line: the loaded run, the bind warning, the token's sources.
The server itself is replaced (the API and browser tests run the real one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import medknn.cli
import medknn.serve
from medknn.cli import app


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setattr(medknn.cli, "err_console", Console(width=10_000, stderr=True))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        medknn.serve, "run_server", lambda service, **kw: calls.append({"service": service, **kw})
    )
    return calls


def test_serve_loads_the_run_and_binds_loopback_by_default(
    deepknn_run: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDKNN_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", str(deepknn_run), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    (call,) = served
    assert (call["host"], call["port"], call["token"]) == ("127.0.0.1", 8123, None)
    assert call["service"].trained.path == deepknn_run


def test_serve_warns_off_loopback_and_takes_the_token_from_the_environment(
    deepknn_run: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDKNN_SERVE_TOKEN", "from-env")
    result = CliRunner().invoke(app, ["serve", str(deepknn_run), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "warning: binding 0.0.0.0: other machines can reach this server" in result.output
    assert served[0]["token"] == "from-env"


def test_serve_refuses_a_folder_that_is_no_run(tmp_path: Path, served: list) -> None:
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "is not a medknn run" in result.output
    assert not served


def test_serve_loads_an_ensemble(
    serve_ensemble_dir: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDKNN_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", str(serve_ensemble_dir)])
    assert result.exit_code == 0, result.output
    (call,) = served
    assert call["service"].ensemble and call["service"].trained.path == serve_ensemble_dir
    assert len(call["service"].members) == 2

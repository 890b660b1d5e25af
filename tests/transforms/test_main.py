"""The command line in a deployment that serves several counties."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms.__main__ import main


@pytest.fixture
def province(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COUNTIES", "a,b")
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("PLATFORM_URL", raising=False)
    return tmp_path


def test_migrate_brings_every_county_up_to_date(
    province: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert (province / "warehouse" / "a.sqlite").exists()
    assert (province / "warehouse" / "b.sqlite").exists()
    assert "county b up to date" in capsys.readouterr().out


def test_a_county_command_asks_which_county(
    province: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["warnings", "--date", "2026-11-28"]) == 2
    assert "add --county CODE" in capsys.readouterr().err
    assert main(["--county", "b", "summary"]) == 1  # no run recorded yet
    assert (province / "warehouse" / "b.sqlite").exists()
    assert not (province / "warehouse" / "a.sqlite").exists()


def test_landing_files_of_any_county_count(province: Path) -> None:
    assert main(["has-landing-files"]) == 1
    folder = province / "landing" / "b" / "health"
    folder.mkdir(parents=True)
    (folder / "慢病.csv").write_text("x\n", encoding="utf-8")
    assert main(["has-landing-files"]) == 0
    assert main(["--county", "a", "has-landing-files"]) == 1


def test_summary_covers_every_county(province: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary"]) == 1  # no run recorded yet in either
    out = capsys.readouterr().out
    assert "===== county a =====" in out and "===== county b =====" in out

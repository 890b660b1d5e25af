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


def test_a_sample_goes_only_where_no_real_file_ever_was(
    province: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample-allowed"]) == 0  # a fresh folder
    assert "generating a sample" in capsys.readouterr().out
    folder = province / "landing" / "b" / "health"
    folder.mkdir(parents=True)
    (folder / "慢病.csv").write_text("x\n", encoding="utf-8")
    assert main(["sample-allowed"]) == 1  # files of any county are waiting
    assert "Processing the 1 bureau file" in capsys.readouterr().out
    assert main(["--county", "a", "sample-allowed"]) == 0
    # once the files were taken (archived and moved aside) the folder has held real files
    (folder / "慢病.csv").rename(province / "moved.csv")
    archived = province / "archive" / "b" / "ab"
    archived.mkdir(parents=True)
    (archived / "ab12.csv").write_text("x\n", encoding="utf-8")
    assert main(["sample-allowed"]) == 1
    assert "has held 1 real file" in capsys.readouterr().out
    # a folder the generator made stays a sample folder
    from transforms.intake.sample_guard import mark_sample

    mark_sample(province, "test")
    assert main(["sample-allowed"]) == 0


def test_summary_covers_every_county(province: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary"]) == 1  # no run recorded yet in either
    out = capsys.readouterr().out
    assert "===== county a =====" in out and "===== county b =====" in out

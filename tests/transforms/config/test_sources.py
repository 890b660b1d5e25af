"""The bureaus' remote sources: a strict model, nothing configured means nothing pulled."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms.config.errors import PermanentError
from transforms.config.sources import SourceError, load_sources, sources_file


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bureau_sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_no_sources(tmp_path: Path) -> None:
    assert load_sources(tmp_path / "missing.yaml").sources == ()


def test_a_source_takes_safe_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "sources:\n"
        "  - {bureau: health, connection: health_sftp, folder: /exports}\n"
        "  - {bureau: civil_affairs, connection: mz_share, folder: 低保, county: qixian,\n"
        "     delete_after_pull: true, settle_seconds: 0, patterns: ['*.xlsx']}\n",
    )
    sources = load_sources(path)
    [health] = sources.for_county("county")
    assert (health.folder, health.delete_after_pull, health.settle_seconds) == (
        "/exports",
        False,
        60.0,
    )
    assert health.patterns == ("*.xlsx", "*.xls", "*.csv")
    [civil] = sources.for_county("qixian")
    assert civil.delete_after_pull and civil.patterns == ("*.xlsx",)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sources: [{bureau: tax, connection: c}]", "not in the bureau registry"),
        ("sources: [{bureau: health, connection: c, password: x}]", "Extra inputs"),
        ("sources: [{bureau: health, connection: 'a b'}]", "not a valid Airflow connection"),
        ("sources: [{bureau: health, connection: c, settle_seconds: -1}]", "greater than"),
        (
            "sources: [{bureau: health, connection: c}, {bureau: health, connection: c}]",
            "listed twice",
        ),
    ],
)
def test_a_wrong_source_names_the_file_and_the_problem(
    tmp_path: Path, text: str, says: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SourceError, match=says) as caught:
        load_sources(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, PermanentError), "bad settings fail at once, no retries"


def test_bureau_sources_names_another_file(tmp_path: Path) -> None:
    assert sources_file({"BUREAU_SOURCES": str(tmp_path / "x.yaml")}) == tmp_path / "x.yaml"
    assert sources_file({}).name == "bureau_sources.yaml"

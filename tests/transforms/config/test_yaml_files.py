from pathlib import Path

import pytest
import yaml

from transforms.config.paths import CONFIG_DIR
from transforms.config.yaml_files import read_yaml

CONFIG_FILES = sorted(
    p
    for folder in ("contracts", "rules", "reference")
    for p in (CONFIG_DIR / folder).rglob("*.yaml")
)


def test_the_configuration_files_are_found() -> None:
    assert len(CONFIG_FILES) >= 15


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_configuration_file_reads_as_safe_load_reads_it(path: Path) -> None:
    assert read_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_a_document_naming_a_python_object_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("x: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(yaml.YAMLError):
        read_yaml(hostile)


def test_dates_numbers_and_unicode_are_the_safe_loaders(tmp_path: Path) -> None:
    text = "day: 2026-11-28\nshare: 0.5\ncount: 12\nname: 乡村振兴局\nnothing: ~\nyes: true\n"
    path = tmp_path / "values.yaml"
    path.write_text(text, encoding="utf-8")
    assert read_yaml(path) == yaml.safe_load(text)
    assert read_yaml(path)["name"] == "乡村振兴局"


def test_a_broken_file_raises(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(yaml.YAMLError):
        read_yaml(broken)

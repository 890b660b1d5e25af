"""The tooling's promises: the pre-commit hooks run what `make lint` runs, the image's
requirements carry no test tools, and the installer is pinned."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _lint_recipe() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [line.strip().replace("$(BIN)/", ".venv/bin/") for line in recipe if line.strip()]


def test_pre_commit_runs_exactly_what_make_lint_runs() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    entries = [hook["entry"].removeprefix("env ") for hook in hooks]
    assert len(_lint_recipe()) == 4
    assert entries == _lint_recipe()
    assert all(hook["language"] == "system" and not hook["pass_filenames"] for hook in hooks)


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            package, version = line.split("==", 1)
            pins[re.sub(r"\[.*\]", "", package).lower()] = version.strip()
    return pins


def test_test_tools_stay_out_of_the_image() -> None:
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    for tool in ("pytest", "pytest-timeout", "hypothesis", "aiosmtpd", "ruff", "mypy"):
        assert tool not in runtime, tool
        assert tool in dev, tool
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "requirements.txt" in dockerfile and "requirements-dev" not in dockerfile


def test_every_pin_agrees_with_the_constraints() -> None:
    constraints = _pins("constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt"):
        for package, version in _pins(name).items():
            assert constraints.get(package, version) == version, (name, package)


def test_uv_is_pinned() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert version and re.fullmatch(r"\d+\.\d+\.\d+", version.group(1))
    assert "uv==$(UV_VERSION)" in makefile
    assert not re.search(r"pip install[^\n]*\buv\b(?!==)", makefile)

"""docker-compose.yml as Compose reads it: YAML (anchors and merge keys resolved), then
`${VAR}` interpolation from an env file. Shared by the compose-file test and the end-to-end
test, which runs the file's Airflow services natively."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# The Airflow services and the `airflow` command line each runs (the image's entrypoint).
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariables(ValueError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"required variables not set: {', '.join(names)}")
        self.names = names


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored (the subset .env.example uses)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: not KEY=VALUE: {raw!r}")
        if key in values:
            raise ValueError(f"{path.name}:{number}: {key} set twice")
        values[key] = value
    return values


def referenced_variables(text: str) -> set[str]:
    return {
        m.group("braced") or m.group("named")
        for m in _VARIABLE.finditer(text)
        if not m.group("escaped")
    }


def _substitute(text: str, env: Mapping[str, str], missing: list[str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if empty else str(value)
        if op in (":?", "?"):
            if empty:
                missing.append(name)
                return ""
            return str(value)
        if op in (":+", "+"):
            return "" if empty else arg
        return value or ""

    return _VARIABLE.sub(one, text)


def interpolate(node: Any, env: Mapping[str, str], missing: list[str] | None = None) -> Any:
    """Every string value interpolated; raises MissingVariables naming each unset required one."""
    top = missing is None
    missing = [] if missing is None else missing
    if isinstance(node, str):
        result: Any = _substitute(node, env, missing)
    elif isinstance(node, dict):
        result = {k: interpolate(v, env, missing) for k, v in node.items()}
    elif isinstance(node, list):
        result = [interpolate(v, env, missing) for v in node]
    else:
        result = node
    if top and missing:
        raise MissingVariables(sorted(set(missing)))
    return result


def raw_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    result = interpolate(raw_compose(), env)
    assert isinstance(result, dict)
    return result


def required_variables(text: str) -> set[str]:
    """Variables the file refuses to render without (`${NAME:?message}`)."""
    return {m.group("braced") for m in _VARIABLE.finditer(text) if m.group("op") in (":?", "?")}


def example_env(**secrets: str) -> dict[str, str]:
    """.env.example with the required secrets filled in (by `secrets`, else a placeholder)."""
    env = parse_env_file(ENV_EXAMPLE)
    for key in required_variables(COMPOSE_FILE.read_text(encoding="utf-8")):
        if not env.get(key):
            env[key] = f"test-{key.lower().replace('_', '-')}-0123456789abcdef0123456789abcdef"
    env.update(secrets)
    return env


def service_environment(compose: Mapping[str, Any], service: str) -> dict[str, str]:
    env = compose["services"][service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment must be a mapping"
    return {str(k): "" if v is None else str(v) for k, v in env.items()}

"""The run report's templates: autoescape, masking of every printed value, and no page markup
built in Python f-strings anywhere in the pipeline."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jinja2
import pytest
from markupsafe import Markup

from transforms.config.paths import PROJECT_ROOT
from transforms.outputs import templating

ID = "110101199003071234"
TAG = re.compile(r"<(?:td|tr|th|table|p|li|ul|h[1-6]|a|span|div|svg|rect|text|details)\b")


def test_a_printed_value_is_escaped_and_masked() -> None:
    page = templating.environment().from_string("<td>{{ value }}</td>").render(value=f"<b>{ID}</b>")
    assert page == "<td>&lt;b&gt;110101********1234&lt;/b&gt;</td>"


def test_markup_from_a_macro_or_template_is_placed_as_it_is() -> None:
    page = templating.environment().from_string("{{ part }}").render(part=Markup("<i>x</i>"))
    assert page == "<i>x</i>"


def test_a_missing_value_is_an_error_not_an_empty_cell() -> None:
    with pytest.raises(jinja2.UndefinedError):
        templating.environment().from_string("{{ nothing }}").render()


def test_links_are_quoted_for_the_attribute() -> None:
    template = '{% import "_macros.html.j2" as m %}{{ m.link(href, label) }}'
    page = (
        templating.environment()
        .from_string(template)
        .render(href='回执/a "b"<c>.xlsx', label="<回执>")
    )
    assert 'href="%E5%9B%9E%E6%89%A7/a%20%22b%22%3Cc%3E.xlsx"' in page
    assert ">&lt;回执&gt;</a>" in page


def _html_f_strings(path: Path) -> list[int]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(part, ast.Constant) and TAG.search(str(part.value)) for part in node.values
        ):
            found.append(node.lineno)
    return found


def test_no_page_markup_is_built_in_an_f_string() -> None:
    modules = sorted((PROJECT_ROOT / "transforms").rglob("*.py"))
    assert len(modules) > 50
    built = {str(m.relative_to(PROJECT_ROOT)): _html_f_strings(m) for m in modules}
    assert {m: lines for m, lines in built.items() if lines} == {}


def test_the_f_string_check_finds_one(tmp_path: Path) -> None:
    module = tmp_path / "page.py"
    module.write_text('row = f"<tr><td>{1}</td></tr>"\n', encoding="utf-8")
    assert _html_f_strings(module) == [1]

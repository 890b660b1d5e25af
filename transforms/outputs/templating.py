"""The Jinja2 environment every HTML page of ours is rendered with (templates/).

Autoescape is on, so a file, sheet or township name a bureau chose shows as text, never as
markup; and every printed value passes `mask_text` on the way out (finalize), so an ID or phone
number that slipped past the facts is masked at the last step. Names are masked earlier, where
the facts are read, because only there is the warehouse's list of names at hand.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from transforms.config.clock import county_time
from transforms.outputs.run_facts import percent
from transforms.privacy.masking import mask_text
from transforms.runlog.steps import run_key


def when(value: dt.datetime | None) -> str:
    """A time as a clerk reads it: Beijing time, to the minute."""
    return county_time(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def _href(rel: str) -> str:
    # autoescape then makes the quoted URL fit for the attribute
    return quote(rel, safe="/#")


def _masked(value: Any) -> Any:
    # Markup is the output of a macro or another template, whose values came through here
    if isinstance(value, str) and not isinstance(value, Markup):
        return mask_text(value)
    return value


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("transforms.outputs", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_masked,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(when=when, percent=percent, href=_href, run_key=run_key)
    return env


def render(template: str, **context: Any) -> Markup:
    """A template rendered: Markup, so that it can be placed into another template as is."""
    return Markup(environment().get_template(template).render(**context))

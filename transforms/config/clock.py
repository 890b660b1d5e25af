"""The county clock: the one place that knows the county's time zone.

A county day is a calendar day in Asia/Shanghai (no daylight saving); the warehouse stores
moments in UTC, and SQLite hands them back without a zone.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

COUNTY_TIMEZONE = "Asia/Shanghai"
COUNTY_TZ = ZoneInfo(COUNTY_TIMEZONE)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def county_time(moment: dt.datetime) -> dt.datetime:
    """A stored moment on the county's clock (a naive moment is UTC, as SQLite returns it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(COUNTY_TZ)


def county_today() -> dt.date:
    return dt.datetime.now(COUNTY_TZ).date()

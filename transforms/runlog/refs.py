"""The references the pipeline's tasks hand each other through XCom: small, JSON-shaped, typed.
Never data: the frames stay in the run's work folder (runlog.workdir), under the paths these name.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class DatasetGroup(TypedDict):
    """discover -> parse_validate: the received files of one dataset, by manifest id."""

    dataset: str
    manifest_ids: list[int]


class ParsedFileRef(TypedDict):
    """parse_validate -> resolve_households: one file parsed and validated."""

    manifest_id: int
    dataset: str
    layout: str  # the contract layout the file was recognised as (agreed, national, ...)
    valid_path: str  # the rows to load (plaintext: the private work folder only)
    issues_path: str  # the quarantine records, masked
    rows_read: int
    rows_dropped: int
    rows_quarantined: int
    rows_flagged: int
    sheets: list[str]  # sheet names as shown (masked)
    # data-like sheets left unread, (zh, en); a list once it has been through XCom's JSON
    sheet_note: tuple[str, str] | list[str] | None
    # the quarantined rows with their ID and name (plaintext: the private work folder only),
    # for tying them to roster persons (households.near_persons)
    refused_path: NotRequired[str]


class ResolvedFileRef(ParsedFileRef):
    """resolve_households -> load: the file's persons matched to households."""

    rows_unmatched: int | None  # None while no roster has been loaded


class LoadedFileRef(ResolvedFileRef):
    """load -> the summary: what the file became."""

    status: str
    rows_loaded: int

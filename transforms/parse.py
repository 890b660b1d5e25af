"""From raw sheets to a frame of normalised text per contract column.

Steps: find the header row (below any title rows, possibly two merged levels), recognise the
dataset by its headers, drop total/footer/repeated-header rows (counted, never quarantined),
and normalise every cell according to its column type. Nothing is coerced silently: a value that
cannot be normalised stays as written so validation can report it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from transforms.contracts import Column, ColumnType, Contract, normalize_header
from transforms.identifiers import ID_PATTERN, checksum_ok, is_well_formed, normalize_id
from transforms.readers import RawSheet
from transforms.reasons import FileRejection
from transforms.values import (
    normalize_date,
    normalize_enum,
    normalize_int,
    normalize_money,
    normalize_text,
    normalize_yn,
)

HEADER_SCAN_ROWS = 30
ROW_ID = "_row_id"
SHEET = "_sheet"
SOURCE_ROW = "_source_row"
_TOTAL_ROW = re.compile(r"^(合计|小计|总计|共计)")
_FOOTER_ROW = re.compile(
    r"^(填表人|审核人|制表人|制表日期|填表日期|填报人|填报日期|负责人|单位负责人|联系电话)"
)
_ID_SHAPE = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class HeaderMatch:
    sheet: str
    header_rows: tuple[int, ...]  # source row numbers forming the header (one or two)
    data_start: int  # index into the sheet's rows where data begins
    positions: dict[str, int]  # canonical column name -> cell position
    headers_found: tuple[str, ...]


@dataclass
class ParsedFile:
    contract: Contract
    frame: pd.DataFrame  # raw text columns `raw__<name>`, normalised `<name>`, lineage columns
    sheets_read: list[str]
    sheets_skipped: list[str]
    rows_read: int
    rows_dropped: int
    dropped_by_kind: dict[str, int] = field(default_factory=dict)


def _cell_headers(cells: Sequence[str | None]) -> list[str]:
    return [normalize_header(c) if c else "" for c in cells]


def _merge_rows(upper: Sequence[str | None], lower: Sequence[str | None]) -> list[str | None]:
    # A two-level header (基本信息 / 费用信息 over the real headers) carries the real name in the
    # lower row; where the lower cell is empty (vertically merged), the upper row holds it.
    width = max(len(upper), len(lower))
    merged: list[str | None] = []
    for i in range(width):
        low = lower[i] if i < len(lower) else None
        up = upper[i] if i < len(upper) else None
        merged.append(low if low not in (None, "") else up)
    return merged


def _positions(headers: list[str], contract: Contract) -> dict[str, int]:
    index = contract.header_index()
    positions: dict[str, int] = {}
    for pos, header in enumerate(headers):
        column = index.get(header)
        if column is not None and column.name not in positions:
            positions[column.name] = pos
    return positions


def find_header(sheet: RawSheet, contract: Contract) -> HeaderMatch | None:
    """The best header (single or two-level) for this contract among the sheet's first rows."""
    best: HeaderMatch | None = None
    scan = sheet.rows[:HEADER_SCAN_ROWS]
    for i, (row_no, cells) in enumerate(scan):
        candidates: list[tuple[tuple[int, ...], int, list[str | None]]] = [
            ((row_no,), i + 1, list(cells))
        ]
        if i + 1 < len(scan):
            next_no, next_cells = scan[i + 1]
            candidates.append(((row_no, next_no), i + 2, _merge_rows(cells, next_cells)))
        for header_rows, data_start, header_cells in candidates:
            headers = _cell_headers(header_cells)
            positions = _positions(headers, contract)
            if len(positions) < 2:
                continue
            # On a tie the single row wins: a title row above the header adds nothing to it.
            if best is None or (len(positions), -len(header_rows)) > (
                len(best.positions),
                -len(best.header_rows),
            ):
                best = HeaderMatch(
                    sheet=sheet.name,
                    header_rows=header_rows,
                    data_start=data_start,
                    positions=positions,
                    headers_found=tuple(h for h in headers if h),
                )
    return best


def identify(
    sheets: Sequence[RawSheet], contracts: Sequence[Contract]
) -> tuple[Contract, list[HeaderMatch]]:
    """Which contract the file follows, recognised by its headers, and each data sheet's header.

    Raises FileRejection when no contract's required headers are all present.
    """
    if not contracts:
        raise FileRejection(
            "no_contract_for_bureau",
            "该文件夹没有登记任何数据格式，无法识别文件",
            "no contract is registered for this folder",
        )
    scored: list[tuple[int, int, Contract, list[HeaderMatch]]] = []
    for contract in contracts:
        matches = [m for m in (find_header(s, contract) for s in sheets) if m is not None]
        required = {c.name for c in contract.required_columns}
        complete = [m for m in matches if required <= m.positions.keys()]
        best_cols = max((len(m.positions) for m in matches), default=0)
        scored.append((len(complete) and best_cols, best_cols, contract, complete or matches))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    complete_score, best_cols, contract, matches = scored[0]
    if complete_score:
        required = {c.name for c in contract.required_columns}
        return contract, [m for m in matches if required <= m.positions.keys()]

    found = max((m.headers_found for m in matches), key=len, default=())
    if not found:
        found = max(
            (tuple(h for h in _cell_headers(c) if h) for s in sheets for _, c in s.rows[:5]),
            key=len,
            default=(),
        )
    required_missing = [
        c.header
        for c in contract.required_columns
        if matches and c.name not in max(matches, key=lambda m: len(m.positions)).positions
    ]
    # A file that matches most of one contract is that dataset with a column missing; one that
    # matches little is a file of another kind altogether.
    if matches and best_cols * 2 >= len(contract.required_columns):
        missing = "、".join(required_missing)
        raise FileRejection(
            "missing_required_column",
            f"缺少必需的列：{missing}（数据“{contract.title_zh}”）。请补上该列后重新报送",
            f"required column(s) missing: {missing} (dataset {contract.dataset})",
            headers_found=found,
            headers_expected=tuple(c.header for c in contract.required_columns),
        )
    expected = tuple(
        f"{c.title_zh}：" + "、".join(col.header for col in c.required_columns) for c in contracts
    )
    raise FileRejection(
        "unknown_headers",
        "无法识别文件内容：表头与本单位任何一种报送格式都不符。"
        f"文件中的表头：{'、'.join(found) or '（无）'}",
        f"headers match no dataset of this bureau; found: {', '.join(found) or '(none)'}",
        headers_found=found,
        headers_expected=expected,
    )


def _row_kind(cells: Sequence[str | None], header_texts: set[str]) -> str | None:
    texts = [normalize_header(c) for c in cells if c not in (None, "")]
    if not texts:
        return "blank"
    if any(_TOTAL_ROW.match(t) for t in texts[:3]):
        return "total"
    if any(_FOOTER_ROW.match(t) for t in texts):
        return "footer"
    if header_texts and sum(t in header_texts for t in texts) * 2 >= len(header_texts):
        return "repeated_header"
    return None


_NORMALIZERS = {
    ColumnType.TEXT: normalize_text,
    ColumnType.HH: lambda v: None if (t := normalize_text(v)) is None else t.replace(" ", ""),
    ColumnType.ID: normalize_id,
    ColumnType.DATE: normalize_date,
    ColumnType.MONEY: normalize_money,
    ColumnType.INT: normalize_int,
    ColumnType.YN: normalize_yn,
}


def normalize_column(column: Column, raw: pd.Series) -> pd.Series:
    if column.type is ColumnType.ENUM:
        aliases = column.aliases
        return raw.map(lambda v: normalize_enum(v, aliases), na_action="ignore")
    return raw.map(_NORMALIZERS[column.type], na_action="ignore")


def id_status(normalized: pd.Series) -> pd.Series:
    """Why an ID of the right shape is still wrong: 'ok', 'birth_date' (no such day, or in the
    future) or 'checksum'. Null for empty or misshapen IDs, which the format rule reports."""

    def status(value: object) -> str | None:
        if not isinstance(value, str) or not _ID_SHAPE.fullmatch(value):
            return None
        if not is_well_formed(value):
            return "birth_date"
        return "ok" if checksum_ok(value) else "checksum"

    return normalized.map(status).astype("object")


def to_frame(sheets: Sequence[RawSheet], contracts: Sequence[Contract]) -> ParsedFile:
    contract, matches = identify(sheets, contracts)
    by_sheet = {m.sheet: m for m in matches}
    records: list[dict[str, object]] = []
    dropped: dict[str, int] = {}
    for sheet in sheets:
        match = by_sheet.get(sheet.name)
        if match is None:
            continue
        header_texts = {normalize_header(h) for c in contract.columns for h in c.all_headers} & set(
            match.headers_found
        )
        for row_no, cells in sheet.rows[match.data_start :]:
            kind = _row_kind(cells, header_texts)
            if kind is not None:
                if kind != "blank":
                    dropped[kind] = dropped.get(kind, 0) + 1
                continue
            record: dict[str, object] = {SHEET: sheet.name, SOURCE_ROW: row_no}
            for name, pos in match.positions.items():
                record[f"raw__{name}"] = cells[pos] if pos < len(cells) else None
            records.append(record)

    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        frame = pd.DataFrame(
            {SHEET: pd.Series(dtype="object"), SOURCE_ROW: pd.Series(dtype="int64")}
        )
    frame[ROW_ID] = range(len(frame))
    for column in contract.columns:
        raw_name = f"raw__{column.name}"
        if raw_name not in frame:
            frame[raw_name] = pd.Series([None] * len(frame), dtype="object")
        raw = frame[raw_name].astype("object").where(frame[raw_name].notna(), None)
        frame[column.name] = normalize_column(column, raw).astype("object")
    return ParsedFile(
        contract=contract,
        frame=frame,
        sheets_read=[m.sheet for m in matches],
        sheets_skipped=[s.name for s in sheets if s.name not in by_sheet],
        rows_read=len(frame),
        rows_dropped=sum(dropped.values()),
        dropped_by_kind=dropped,
    )

"""From raw sheets to a frame of normalised text per contract column.

Steps: find the header row (below any title rows, possibly two merged levels), recognise the
dataset by its headers, drop total/footer/repeated-header rows (counted, never quarantined),
and normalise every cell according to its column type. Nothing is coerced silently: a value that
cannot be normalised stays as written so validation can report it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from transforms.config.collection import cycles_uncollected
from transforms.config.contracts import (
    Column,
    ColumnType,
    Contract,
    normalize_header,
)
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.headers import (
    HeaderLine,
    HeaderMatch,
    SkippedSheet,
    identify,
    skipped_sheet,
    universe_of,
)
from transforms.parsing.identifiers import id_statuses, normalize_id
from transforms.parsing.readers import RawSheet
from transforms.parsing.values import (
    normalize_date,
    normalize_enum,
    normalize_int,
    normalize_money,
    normalize_phone,
    normalize_text,
    normalize_yn,
)

ROW_ID = "_row_id"
SHEET = "_sheet"
SOURCE_ROW = "_source_row"
# each cell as written, beside its normalised value: raw__<column>
RAW_PREFIX = "raw__"
_TOTAL_ROW = re.compile(r"^(合计|小计|总计|共计)")
_FOOTER_ROW = re.compile(
    r"^(填表人|审核人|制表人|制表日期|填表日期|填报人|填报日期|负责人|单位负责人|联系电话)"
)
# the cell of a column its sheet does not have
_ABSENT = float("nan")


@dataclass
class ParsedFile:
    contract: Contract
    frame: pd.DataFrame  # raw text columns `raw__<name>`, normalised `<name>`, lineage columns
    sheets_read: list[str]
    sheets_skipped: list[str]
    rows_read: int
    rows_dropped: int
    dropped_by_kind: dict[str, int] = field(default_factory=dict)
    skipped: list[SkippedSheet] = field(default_factory=list)

    # sheet -> canonical column name -> the header the clerk wrote (a synonym, say 证件号码)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def sheet_note(self) -> tuple[str, str] | None:
        """(zh, en) naming every data-like sheet left unread, for the manifest and the receipt;
        None when only instruction or empty sheets were left out."""
        reported = [s for s in self.skipped if s.reported]
        if not reported:
            return None
        return "；".join(s.zh for s in reported), "; ".join(s.en for s in reported)


# a cell's normalised text, and whether it starts a total row or a footer row
_CellFacts = tuple[str, bool, bool]
# distinct cells remembered per file: the repeated ones (townships, 是/否, amounts) are what a
# memory saves; IDs and names never repeat, so the memory is emptied rather than left to grow
_CELL_MEMORY = 200_000


def _cell_facts(cell: str) -> _CellFacts:
    if cell.isascii() and cell.isprintable():
        # NFKC leaves printable ASCII alone and it holds nothing invisible; the total and
        # footer words are Chinese (most cells are IDs, dates and amounts)
        return "".join(cell.split()), False, False
    text = normalize_header(cell)
    return text, _TOTAL_ROW.match(text) is not None, _FOOTER_ROW.match(text) is not None


def _data_rows(
    rows: Sequence[tuple[int, list[str | None]]],
    header_texts: set[str],
    header_lines: set[HeaderLine],
    seen: dict[str, _CellFacts],
    dropped: dict[str, int],
) -> list[tuple[int, list[str | None]]]:
    """The data rows among `rows` (what _row_kind calls None), the others counted by kind.

    A row none of whose cells could make it a total, footer or header row (a cell whose text
    starts a total or footer, is a header's, or is nothing once normalised) is a data row
    when it has a cell: that is nearly every row, told apart with set operations, once per
    distinct cell. Every other row gets _row_kind's full look."""
    distinct: set[str | None] = set()
    for _, cells in rows:
        distinct.update(cells)
    distinct.discard(None)
    line_texts = {text for line in header_lines for _, text in line}
    suspect: set[str | None] = set()
    for cell in distinct:
        if cell:
            text, total, footer = _cell_facts(cell)
            if total or footer or not text or text in header_texts or text in line_texts:
                suspect.add(cell)
    if not suspect:
        # no row can be a total, footer or header row: every row with a cell is a data row
        # (one without is blank, which is not counted)
        return [(row_no, cells) for row_no, cells in rows if any(cells)]
    data: list[tuple[int, list[str | None]]] = []
    for row_no, cells in rows:
        if suspect.isdisjoint(cells) and any(cells):
            data.append((row_no, cells))
            continue
        kind = _row_kind(cells, header_texts, header_lines, seen)
        if kind is None:
            data.append((row_no, cells))
        elif kind != "blank":
            dropped[kind] = dropped.get(kind, 0) + 1
    return data


def _row_kind(
    cells: Sequence[str | None],
    header_texts: set[str],
    header_lines: set[HeaderLine],
    seen: dict[str, _CellFacts] | None = None,
) -> str | None:
    """Why a row below the header is no data row (None: it is one). `seen` remembers the facts
    of cells already met in the file: every cell of every row passes here."""
    if seen is None:
        seen = {}
    elif len(seen) > _CELL_MEMORY:
        seen.clear()
    normalized: list[tuple[int, _CellFacts]] = []
    for pos, cell in enumerate(cells):
        if cell:
            facts = seen.get(cell)
            if facts is None:
                facts = seen[cell] = _cell_facts(cell)
            normalized.append((pos, facts))
    if not normalized:
        return "blank"
    # a total row says so in one of its first three cells; a footer anywhere
    if any(facts[1] for _, facts in normalized[:3]):
        return "total"
    if any(facts[2] for _, facts in normalized):
        return "footer"
    texts = [facts[0] for _, facts in normalized]
    if header_texts and sum(t in header_texts for t in texts) * 2 >= len(header_texts):
        return "repeated_header"
    # The upper row of a two-level header (基本信息 / 费用信息) printed again on a later page
    # holds few column headers; it is recognised as a copy of the header row itself.
    if tuple((pos, facts[0]) for pos, facts in normalized if facts[0]) in header_lines:
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
    ColumnType.PHONE: normalize_phone,
}


def _normalizer(column: Column) -> Callable[[str], str | None]:
    if column.type is ColumnType.ENUM:
        aliases = column.aliases
        return lambda v: normalize_enum(v, aliases)
    return _NORMALIZERS[column.type]


def normalize_column(column: Column, raw: pd.Series) -> pd.Series:
    """The column's cells normalised, blanks left as they are (what raw.map(normaliser,
    na_action="ignore") gives). Each distinct value is normalised once: townships, enums, dates
    and a household's amounts repeat down a column, and the normalisers are pure."""
    normalize = _normalizer(column)
    values = raw.to_numpy(dtype=object)
    try:
        codes, uniques = pd.factorize(values)
    except TypeError:  # an unhashable cell: nothing a reader gives, but never fail on it
        return raw.map(_memoized(normalize), na_action="ignore")
    normalized = np.empty(len(uniques) + 1, dtype=object)
    normalized[:-1] = [normalize(value) for value in uniques]
    out = normalized[codes]  # a blank's code is -1: the last, filled below
    blank = codes == -1
    if blank.any():
        out[blank] = values[blank]
    # built like Series.map's result, so that the column's dtype is the same too
    return pd.Series(out, index=raw.index)


def _memoized(normalize: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """The normaliser with a memory of the values it has seen in one column: townships, enums,
    dates and amounts repeat down a column (a household's fields on every member's row), and
    the normalisers are pure."""
    seen: dict[str, str | None] = {}

    def cached(value: str) -> str | None:
        try:
            return seen[value]
        except KeyError:
            result = seen[value] = normalize(value)
            return result
        except TypeError:  # not hashable: nothing a reader gives, but never fail on it
            return normalize(value)

    return cached


def _year_before(normalized_date: object) -> str | None:
    """The income year a national export's 数据日期 implies; None for a date that is not one
    (the date column's own rule reports it)."""
    text = str(normalized_date)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    return str(int(text[:4]) - 1)


def id_status(normalized: pd.Series) -> pd.Series:
    """Why an ID of the right shape is still wrong: 'ok', 'birth_date' (no such day, or in the
    future) or 'checksum'. Null for empty or misshapen IDs, which the format rule reports."""

    statuses = np.empty(len(normalized), dtype=object)
    statuses[:] = id_statuses(normalized.to_numpy(dtype=object).tolist())
    # built like Series.map's result, so that the column's dtype is the same too
    return pd.Series(statuses, index=normalized.index).astype("object")


def _filled_down(
    raw: pd.Series, sheets: pd.Series, carried: dict[str, object] | None = None
) -> pd.Series:
    """Blank cells take the value above them in the same sheet (a merged range reads as its
    first cell and blanks); the first rows of a sheet stay blank when they are.

    `carried` (rows read in chunks) holds the last value each sheet's earlier chunks left: the
    chunk's first rows take it, and it is updated with this chunk's last values."""
    blank = raw.isna() | raw.map(lambda v: isinstance(v, str) and not v.strip())
    kept = raw.astype("object").where(~blank)
    groups = sheets.to_numpy()
    if carried:
        # the value above the chunk, as one row before its first, in the first row's sheet
        # (a sheet's rows are together; the chunk's other sheets begin in it)
        first = groups[0] if len(groups) else None
        if first in carried:
            above = pd.Series([carried[first]], index=[-1], dtype="object")
            kept = pd.concat([above, kept])
            groups = np.concatenate([np.array([first], dtype=object), groups])
    filled = kept.groupby(groups, sort=False).ffill()
    if carried is not None:
        last = filled.groupby(groups, sort=False).last()
        carried.update({str(sheet): value for sheet, value in last.items()})
    if len(filled) > len(raw):
        filled = filled.iloc[1:]
    return filled.astype("object").where(filled.notna(), None)


DataRows = list[tuple[str, HeaderMatch, list[tuple[int, list[str | None]]]]]


def header_texts_of(contract: Contract, match: HeaderMatch) -> set[str]:
    """The normalised headers of the contract's columns that `match`'s sheet has."""
    return {normalize_header(h) for c in contract.columns for h in c.all_headers} & set(
        match.headers_found
    )


def no_data_rows(contract: Contract, matches: Sequence[HeaderMatch]) -> FileRejection:
    """The refusal of a file that has the header but not a single data row."""
    return FileRejection(
        "no_data_rows",
        f"文件只有表头，没有任何数据行（数据“{contract.title_zh}”）。请填入数据后重新报送",
        f"the file has the header but no data rows (dataset {contract.dataset})",
        headers_found=max((m.headers_found for m in matches), key=len),
        headers_expected=tuple(c.header for c in contract.required_columns),
    )


def names_read_of(kept: Sequence[tuple[str, HeaderMatch]]) -> list[str]:
    """The columns read, in the order a frame of one dict per row would have them, from the
    sheets that gave data rows (in their order)."""
    return list(dict.fromkeys(name for _, m in kept for name in m.positions))


def as_text_column(values: pd.Series) -> pd.Series:
    """A column of blanks (None) as pandas builds a column of text and blanks: a string column
    whose blanks are NaN. A chunk of rows with no value in a column the file has values in
    gets what the whole file's column holds on those rows (pandas infers the column's dtype
    from all its values)."""
    if values.dtype == object and bool(values.isna().all()):
        return values.astype("str")
    return values


class ChunksDisagree(ValueError):
    """The chunks of a file give a column dtypes whose whole-file dtype is not worked out here:
    the file is parsed and validated whole instead."""


def whole_raw_dtype(chunk_dtypes: Iterable[Any]) -> Any:
    """The dtype pandas gives a column of cells as written (text, None, NaN for a column the
    row's sheet lacks) over the whole file, from its dtypes in the file's chunks: text makes it
    a string column (None read as NaN), else a NaN makes it float64, else it is object (None)."""
    kinds = set(chunk_dtypes)
    strings = [k for k in kinds if isinstance(k, pd.StringDtype)]
    if strings:
        return strings[0]
    if any(k == np.dtype("float64") for k in kinds):
        return np.dtype("float64")
    if kinds <= {np.dtype("object")}:
        return np.dtype("object")
    raise ChunksDisagree(f"cells as written of an unexpected dtype: {sorted(map(str, kinds))}")


def frame_of_rows(
    contract: Contract,
    kept: DataRows,
    names_read: Sequence[str],
    first_row_id: int = 0,
    carried: dict[str, dict[str, object]] | None = None,
    raw_dtypes: Mapping[str, Any] | None = None,
    has_text: Collection[str] | None = None,
    normalized_only: Collection[str] | None = None,
) -> pd.DataFrame:
    """The frame of `kept`'s data rows (to_frame's frame, or the rows first_row_id.. of it when
    a file is parsed in chunks: then `carried` holds the fill-down values of the chunks before,
    per column and sheet, `raw_dtypes` the whole file's dtype of each column as written,
    `has_text` the columns with a value somewhere in the file, and the frame's index is the
    rows' ids). `normalized_only` (a first pass) names the columns to normalise; the others
    are left blank."""
    # The rows as tuples under one list of columns; a column a sheet lacks is NaN on its rows,
    # as a frame of one dict per row has it.
    records: list[tuple[object, ...]] = []
    for sheet_name, match, rows in kept:
        positions = [match.positions.get(name) for name in names_read]
        width = max((pos for pos in positions if pos is not None), default=-1) + 1
        for row_no, cells in rows:
            if len(cells) < width:  # a short CSV line
                cells = [*cells, *([None] * (width - len(cells)))]
            records.append(
                (
                    sheet_name,
                    row_no,
                    *[_ABSENT if pos is None else cells[pos] for pos in positions],
                )
            )
    frame = pd.DataFrame.from_records(
        records, columns=[SHEET, SOURCE_ROW, *(f"{RAW_PREFIX}{name}" for name in names_read)]
    )
    del records
    if carried is not None:
        frame.index = pd.RangeIndex(first_row_id, first_row_id + len(frame))
    for raw_name, dtype in (raw_dtypes or {}).items():
        # the dtype pandas gives the whole file's column (`whole_raw_dtype`)
        if raw_name in frame and frame[raw_name].dtype != dtype:
            frame[raw_name] = frame[raw_name].astype(dtype)
    frame[ROW_ID] = range(first_row_id, first_row_id + len(frame))
    for name in contract.fill_down:
        raw_name = f"{RAW_PREFIX}{name}"
        if raw_name in frame:
            sheet_values = None if carried is None else carried.setdefault(name, {})
            frame[raw_name] = _filled_down(frame[raw_name], frame[SHEET], sheet_values)
    for column in contract.columns:
        raw_name = f"{RAW_PREFIX}{column.name}"
        if raw_name not in frame:
            frame[raw_name] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        if normalized_only is not None and column.name not in normalized_only:
            # a first pass that does not need this column's values: left blank
            frame[column.name] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
            continue
        raw = frame[raw_name].astype("object").where(frame[raw_name].notna(), None)
        normalized = normalize_column(column, raw)
        if has_text is not None and column.name in has_text:
            normalized = as_text_column(normalized)
        frame[column.name] = normalized.astype("object")
    for target, derivation in contract.derive.items():
        # what the clerk wrote is the source cell (数据日期), quoted if the derived value fails
        frame[f"{RAW_PREFIX}{target}"] = frame[f"{RAW_PREFIX}{derivation.source}"]
        years = frame[derivation.source].map(_year_before, na_action="ignore").astype("object")
        frame[target] = years.where(years.notna(), None)
    # the contract's order whatever the file's (a layout lacks columns the others have)
    names = [c.name for c in contract.columns]
    return frame[[SHEET, SOURCE_ROW, *(f"{RAW_PREFIX}{n}" for n in names), ROW_ID, *names]]


def to_frame(sheets: Sequence[RawSheet], contracts: Sequence[Contract]) -> ParsedFile:
    """The file's data rows as a frame, with every sheet left unread accounted for.

    Raises FileRejection when the file cannot be used: see `identify`, and `no_data_rows` for a
    file that has the header but not a single data row.
    """
    # Hundreds of thousands of new rows, tuples and cells, none in a cycle: the collector's
    # passes over every object the process holds cost more than the parsing (collection.py)
    with cycles_uncollected():
        contract, matches = identify(sheets, contracts)
        by_sheet = {m.sheet: m for m in matches}
        universe = universe_of(contracts)
        skipped = [skipped_sheet(s, contract, universe) for s in sheets if s.name not in by_sheet]
        kept: DataRows = []
        dropped: dict[str, int] = {}
        seen: dict[str, _CellFacts] = {}
        for sheet in sheets:
            match = by_sheet.get(sheet.name)
            if match is None:
                continue
            rows = _data_rows(
                sheet.rows[match.data_start :],
                header_texts_of(contract, match),
                set(match.lines),
                seen,
                dropped,
            )
            if rows:
                kept.append((sheet.name, match, rows))
        seen.clear()
        if not kept:
            raise no_data_rows(contract, matches)
        names_read = names_read_of([(name, match) for name, match, _ in kept])
        frame = frame_of_rows(contract, kept, names_read)
        del kept
    return ParsedFile(
        contract=contract,
        frame=frame,
        sheets_read=[m.sheet for m in matches],
        sheets_skipped=[s.name for s in skipped],
        rows_read=len(frame),
        rows_dropped=sum(dropped.values()),
        dropped_by_kind=dropped,
        skipped=skipped,
        headers={m.sheet: m.written for m in matches},
    )

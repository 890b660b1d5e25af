"""From raw sheets to a frame of normalised text per contract column.

Steps: find the header row (below any title rows, possibly two merged levels), recognise the
dataset by its headers, drop total/footer/repeated-header rows (counted, never quarantined),
and normalise every cell according to its column type. Nothing is coerced silently: a value that
cannot be normalised stays as written so validation can report it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from transforms.config.contracts import (
    ANY_BUREAU,
    Column,
    ColumnType,
    Contract,
    load_contracts,
    normalize_header,
)
from transforms.parsing.file_refusals import FileRejection
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
from transforms.privacy.masking import mask_text

HEADER_SCAN_ROWS = 30
ROW_ID = "_row_id"
SHEET = "_sheet"
SOURCE_ROW = "_source_row"
_TOTAL_ROW = re.compile(r"^(合计|小计|总计|共计)")
_FOOTER_ROW = re.compile(
    r"^(填表人|审核人|制表人|制表日期|填表日期|填报人|填报日期|负责人|单位负责人|联系电话)"
)
# 说明 / 填表说明 / 填报须知 / 注意事项: sheets of instructions, which may even hold a sample row
# under the real headers. They are never data.
_INSTRUCTION_SHEET = re.compile(r"^(?:填表|填报|填写|使用|编制|指标|字段)?(?:说明|须知)|^注意事项")

# the cell of a column its sheet does not have
_ABSENT = float("nan")

HeaderLine = tuple[tuple[int, str], ...]  # (position, normalised text) of a header row's cells


@dataclass(frozen=True)
class HeaderMatch:
    sheet: str
    header_rows: tuple[int, ...]  # source row numbers forming the header (one or two)
    data_start: int  # index into the sheet's rows where data begins
    positions: dict[str, int]  # canonical column name -> cell position
    headers_found: tuple[str, ...]
    matched: tuple[str, ...] = ()  # the normalised headers that matched contract columns
    # canonical column name -> the header the clerk wrote for it (normalised: NFKC, no blanks)
    written: dict[str, str] = field(default_factory=dict)
    # the header rows and the row above them as written, to spot them printed again mid-sheet
    lines: tuple[HeaderLine, ...] = ()


@dataclass(frozen=True)
class SkippedSheet:
    """A sheet that was not read, and why. Only sheets that look like data are reported."""

    name: str
    code: str  # instructions | no_header | missing_required_column | other_dataset
    zh: str = ""
    en: str = ""

    @property
    def reported(self) -> bool:
        return self.code in ("missing_required_column", "other_dataset")


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


def is_instruction_sheet(name: str) -> bool:
    return bool(_INSTRUCTION_SHEET.match(normalize_header(name)))


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


def _positions(headers: list[str], contract: Contract) -> tuple[dict[str, int], tuple[str, ...]]:
    index = contract.header_index()
    positions: dict[str, int] = {}
    matched: list[str] = []
    for pos, header in enumerate(headers):
        column = index.get(header)
        if column is not None and column.name not in positions:
            positions[column.name] = pos
            matched.append(header)
    return positions, tuple(matched)


def _line(cells: Sequence[str | None]) -> HeaderLine:
    return tuple((pos, text) for pos, text in enumerate(_cell_headers(cells)) if text)


def find_header(sheet: RawSheet, contract: Contract) -> HeaderMatch | None:
    """The best header (single or two-level) for this contract among the sheet's first rows."""
    best: HeaderMatch | None = None
    scan = sheet.rows[:HEADER_SCAN_ROWS]
    for i, (row_no, cells) in enumerate(scan):
        # The row just above the header (a title, or the upper row of a two-level header that
        # adds no column) is kept too: printed pages repeat it along with the header.
        above = (_line(scan[i - 1][1]),) if i > 0 else ()
        candidates: list[tuple[tuple[int, ...], int, list[str | None], tuple[HeaderLine, ...]]]
        candidates = [((row_no,), i + 1, list(cells), (*above, _line(cells)))]
        if i + 1 < len(scan):
            next_no, next_cells = scan[i + 1]
            candidates.append(
                (
                    (row_no, next_no),
                    i + 2,
                    _merge_rows(cells, next_cells),
                    (*above, _line(cells), _line(next_cells)),
                )
            )
        for header_rows, data_start, header_cells, lines in candidates:
            headers = _cell_headers(header_cells)
            positions, matched = _positions(headers, contract)
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
                    matched=matched,
                    written={name: headers[pos] for name, pos in positions.items()},
                    lines=lines,
                )
    return best


def _universe(contracts: Sequence[Contract]) -> list[Contract]:
    """Every known dataset (the given contracts win over the committed ones of the same name)."""
    known = {c.dataset: c for c in load_contracts()}
    known.update({c.dataset: c for c in contracts})
    return list(known.values())


def shared_headers(contract: Contract, universe: Sequence[Contract]) -> frozenset[str]:
    """Headers of this contract that other datasets use too (姓名, 身份证号, 乡镇...): a file that
    carries only these says nothing about being this dataset."""
    others: set[str] = set()
    for other in universe:
        if other.dataset != contract.dataset:
            others.update(other.header_index())
    return frozenset(contract.header_index()) & others


def _is_complete(match: HeaderMatch, contract: Contract) -> bool:
    return {c.name for c in contract.required_columns} <= match.positions.keys()


def _distinctive(match: HeaderMatch, shared: frozenset[str]) -> int:
    return sum(h not in shared for h in match.matched)


@dataclass
class _Fit:
    """How well a file's sheets fit one contract."""

    contract: Contract
    matches: list[HeaderMatch]  # the best header of each sheet that has one
    complete: list[HeaderMatch]
    shared: frozenset[str]

    @property
    def key(self) -> tuple[bool, int, int, int]:
        # Layouts of one dataset share their headers: between them, the one the file misses
        # the fewest required columns of is the one the clerk meant (a national export without
        # 人均纯收入 is told about 人均纯收入, not about the agreed layout's income parts).
        return (
            bool(self.complete),
            max((_distinctive(m, self.shared) for m in self.matches), default=0),
            max((len(m.positions) for m in self.matches), default=0),
            -min((len(_missing(m, self.contract)) for m in self.matches), default=0),
        )


def _fit(sheets: Sequence[RawSheet], contract: Contract, universe: Sequence[Contract]) -> _Fit:
    matches = [
        m
        for s in sheets
        if not is_instruction_sheet(s.name) and (m := find_header(s, contract)) is not None
    ]
    return _Fit(
        contract,
        matches,
        [m for m in matches if _is_complete(m, contract)],
        shared_headers(contract, universe),
    )


def _missing(match: HeaderMatch, contract: Contract) -> list[str]:
    return [c.header for c in contract.required_columns if c.name not in match.positions]


def identify(
    sheets: Sequence[RawSheet], contracts: Sequence[Contract]
) -> tuple[Contract, list[HeaderMatch]]:
    """Which contract the file follows, recognised by its headers, and each data sheet's header.

    Raises FileRejection when no sheet has all required headers of a contract: as
    `missing_required_column` when a sheet carries headers only that contract uses (it is that
    dataset with a column missing), else as `unknown_headers` (a file of another kind; 姓名 and
    身份证号 alone do not make a file any particular dataset).
    """
    if not contracts:
        raise FileRejection(
            "no_contract_for_bureau",
            "该文件夹没有登记任何数据格式，无法识别文件",
            "no contract is registered for this folder",
        )
    universe = _universe(contracts)
    fits = [_fit(sheets, v, universe) for c in contracts for v in c.variants()]
    best = max(fits, key=lambda f: f.key)  # the first of equals: the contracts' order decides
    contract = best.contract
    if best.complete:
        return contract, best.complete

    partial = [m for m in best.matches if _distinctive(m, best.shared)]
    if partial:
        match = max(partial, key=lambda m: len(m.positions))
        missing = "、".join(_missing(match, contract))
        raise FileRejection(
            "missing_required_column",
            f"缺少必需的列：{missing}（数据“{contract.title_zh}”）。请补上该列后重新报送",
            f"required column(s) missing: {missing} (dataset {contract.dataset})",
            headers_found=match.headers_found,
            headers_expected=tuple(c.header for c in contract.required_columns),
        )

    matches = [m for f in fits for m in f.matches]
    found = max((m.headers_found for m in matches), key=len, default=())
    if not found:
        found = max(
            (tuple(h for h in _cell_headers(c) if h) for s in sheets for _, c in s.rows[:5]),
            key=len,
            default=(),
        )
    # with no header row, the "headers" are data cells: never carry an ID number onwards
    found = tuple(mask_text(h) for h in found)
    # the bureau's own lists; not the answered 核对清单 any bureau may return (a clerk sending
    # a list is not looking for that)
    expected = tuple(
        f"{c.title_zh}：" + "、".join(col.header for col in c.required_columns)
        for c in contracts
        if c.bureau != ANY_BUREAU or len(contracts) == 1
    )
    raise FileRejection(
        "unknown_headers",
        "无法识别文件内容：表头与本单位任何一种报送格式都不符。"
        f"文件中的表头：{'、'.join(found) or '（无）'}。"
        f"应有的表头：{'；'.join(expected)}",
        f"headers match no dataset of this bureau; found: {', '.join(found) or '(none)'}; "
        f"expected: {'; '.join(expected)}",
        headers_found=found,
        headers_expected=expected,
    )


def _skipped_sheet(
    sheet: RawSheet, contract: Contract, universe: Sequence[Contract]
) -> SkippedSheet:
    """Why a sheet of the file was not read."""
    name = sheet.name
    if is_instruction_sheet(name):
        return SkippedSheet(name, "instructions")
    match = find_header(sheet, contract)
    if match is not None and _distinctive(match, shared_headers(contract, universe)):
        missing = "、".join(_missing(match, contract))
        return SkippedSheet(
            name,
            "missing_required_column",
            f"工作表“{name}”未读取：缺少必需的列：{missing}",
            f"sheet '{name}' not read: required column(s) missing: {missing}",
        )
    for other in universe:
        if other.bureau != contract.bureau or other.dataset == contract.dataset:
            continue
        other_match = find_header(sheet, other)
        if other_match is not None and _is_complete(other_match, other):
            return SkippedSheet(
                name,
                "other_dataset",
                f"工作表“{name}”是“{other.title_zh}”，与本文件其他工作表不是同一种数据，"
                "未读取；请作为单独的文件报送",
                f"sheet '{name}' holds {other.dataset}, not {contract.dataset} like the rest of "
                "the file; not read, send it as a file of its own",
            )
    return SkippedSheet(name, "no_header")


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


def _filled_down(raw: pd.Series, sheets: pd.Series) -> pd.Series:
    """Blank cells take the value above them in the same sheet (a merged range reads as its
    first cell and blanks); the first rows of a sheet stay blank when they are."""
    blank = raw.isna() | raw.map(lambda v: isinstance(v, str) and not v.strip())
    kept = raw.astype("object").where(~blank)
    filled = kept.groupby(sheets.to_numpy(), sort=False).ffill()
    return filled.astype("object").where(filled.notna(), None)


def to_frame(sheets: Sequence[RawSheet], contracts: Sequence[Contract]) -> ParsedFile:
    """The file's data rows as a frame, with every sheet left unread accounted for.

    Raises FileRejection when the file cannot be used: see `identify`, and `no_data_rows` for a
    file that has the header but not a single data row.
    """
    contract, matches = identify(sheets, contracts)
    by_sheet = {m.sheet: m for m in matches}
    universe = _universe(contracts)
    skipped = [_skipped_sheet(s, contract, universe) for s in sheets if s.name not in by_sheet]
    kept: list[tuple[str, HeaderMatch, list[tuple[int, list[str | None]]]]] = []
    dropped: dict[str, int] = {}
    seen: dict[str, _CellFacts] = {}
    for sheet in sheets:
        match = by_sheet.get(sheet.name)
        if match is None:
            continue
        header_texts = {normalize_header(h) for c in contract.columns for h in c.all_headers} & set(
            match.headers_found
        )
        rows = _data_rows(
            sheet.rows[match.data_start :], header_texts, set(match.lines), seen, dropped
        )
        if rows:
            kept.append((sheet.name, match, rows))
    seen.clear()
    # The rows as tuples under one list of columns, in the order a frame of one dict per row
    # would have them; a column a sheet lacks is NaN on its rows, as such a frame has it.
    names_read = list(dict.fromkeys(name for _, m, _ in kept for name in m.positions))
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
    del kept
    if not records:
        raise FileRejection(
            "no_data_rows",
            f"文件只有表头，没有任何数据行（数据“{contract.title_zh}”）。请填入数据后重新报送",
            f"the file has the header but no data rows (dataset {contract.dataset})",
            headers_found=max((m.headers_found for m in matches), key=len),
            headers_expected=tuple(c.header for c in contract.required_columns),
        )

    frame = pd.DataFrame.from_records(
        records, columns=[SHEET, SOURCE_ROW, *(f"raw__{name}" for name in names_read)]
    )
    del records
    frame[ROW_ID] = range(len(frame))
    for name in contract.fill_down:
        raw_name = f"raw__{name}"
        if raw_name in frame:
            frame[raw_name] = _filled_down(frame[raw_name], frame[SHEET])
    for column in contract.columns:
        raw_name = f"raw__{column.name}"
        if raw_name not in frame:
            frame[raw_name] = pd.Series([None] * len(frame), dtype="object")
        raw = frame[raw_name].astype("object").where(frame[raw_name].notna(), None)
        frame[column.name] = normalize_column(column, raw).astype("object")
    for target, derivation in contract.derive.items():
        # what the clerk wrote is the source cell (数据日期), quoted if the derived value fails
        frame[f"raw__{target}"] = frame[f"raw__{derivation.source}"]
        years = frame[derivation.source].map(_year_before, na_action="ignore").astype("object")
        frame[target] = years.where(years.notna(), None)
    # the contract's order whatever the file's (a layout lacks columns the others have)
    names = [c.name for c in contract.columns]
    frame = frame[[SHEET, SOURCE_ROW, *(f"raw__{n}" for n in names), ROW_ID, *names]]
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

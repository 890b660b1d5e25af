"""Finding a sheet's header row and recognising the dataset by its headers.

A header may sit below title rows and span two merged levels; a file is matched to the contract
whose headers it carries (the bureau's own lists first), and every sheet left unread is
explained (instructions, no header, a required column missing, another dataset).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from transforms.config.contracts import ANY_BUREAU, Contract, load_contracts, normalize_header
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.readers import RawSheet
from transforms.privacy.masking import mask_text

HEADER_SCAN_ROWS = 30
# 说明 / 填表说明 / 填报须知 / 注意事项: sheets of instructions, which may even hold a sample row
# under the real headers. They are never data.
_INSTRUCTION_SHEET = re.compile(r"^(?:填表|填报|填写|使用|编制|指标|字段)?(?:说明|须知)|^注意事项")

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


def header_line(cells: Sequence[str | None]) -> HeaderLine:
    return tuple((pos, text) for pos, text in enumerate(_cell_headers(cells)) if text)


def find_header(sheet: RawSheet, contract: Contract) -> HeaderMatch | None:
    """The best header (single or two-level) for this contract among the sheet's first rows."""
    best: HeaderMatch | None = None
    scan = sheet.rows[:HEADER_SCAN_ROWS]
    for i, (row_no, cells) in enumerate(scan):
        # The row just above the header (a title, or the upper row of a two-level header that
        # adds no column) is kept too: printed pages repeat it along with the header.
        above = (header_line(scan[i - 1][1]),) if i > 0 else ()
        candidates: list[tuple[tuple[int, ...], int, list[str | None], tuple[HeaderLine, ...]]]
        candidates = [((row_no,), i + 1, list(cells), (*above, header_line(cells)))]
        if i + 1 < len(scan):
            next_no, next_cells = scan[i + 1]
            candidates.append(
                (
                    (row_no, next_no),
                    i + 2,
                    _merge_rows(cells, next_cells),
                    (*above, header_line(cells), header_line(next_cells)),
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


def universe_of(contracts: Sequence[Contract]) -> list[Contract]:
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
    universe = universe_of(contracts)
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


def skipped_sheet(
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

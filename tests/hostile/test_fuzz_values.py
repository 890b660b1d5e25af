"""The value normalisers and the ID functions never raise, whatever text a cell holds.

They run over whole columns through pandas Series.map: one exception fails the file, and a
hostile cell could fail every file of the day it arrives with.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.parsing import identifiers, values
from transforms.privacy import masking

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)

DIGITS = "0123456789０１２３４５６７８９"
# Shapes that reach the numeric branches: long digit runs (Python refuses int() past 4300
# digits), grouped thousands, exponents, decimal tails, signs and prefixes, full-width forms.
NUMBERISH = st.builds(
    lambda sign, digits, tail, pad: f"{pad}{sign}{digits}{tail}{pad}",
    st.sampled_from(["", "-", "+", "'", "¥", "￥", "G", "＝", "=", "@"]),
    st.text(alphabet=DIGITS, min_size=1, max_size=30)
    | st.builds(str.__mul__, st.sampled_from(["1", "0", "9", "９"]), st.integers(4000, 6000))
    | st.from_regex(r"\A[0-9]{1,3}(,[0-9]{3}){1,1500}\Z"),
    st.sampled_from(["", ".0", ".00", ".5", "E+17", "e+999999999", "E-5", "X", "x", "元", "年"]),
    st.sampled_from(["", " ", "\u3000", "\u200b", "\x00", "\n"]),
)
DATEISH = st.builds(
    lambda y, sep, m, d, t: f"{y}{sep}{m}{sep}{d}{t}",
    st.integers(-99999, 99999),
    st.sampled_from(["-", "/", ".", "年", ""]),
    st.integers(-99, 9999),
    st.integers(-99, 9999),
    st.sampled_from(["", " 08:30", "T25:61:61", "日", " 00:00:00.999999999"]),
)
ANY_TEXT = (
    st.text()
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=50)
    | NUMBERISH
    | DATEISH
    | st.sampled_from(["\ud800", "a\udfffb", "\x00" * 10, "\u2028\u2029\x85", "＝ＳＵＭ（Ａ１）"])
)

NORMALISERS: list[Callable[[str], object]] = [
    values.normalize_text,
    values.normalize_cell_header,
    values.normalize_date,
    values.normalize_money,
    values.normalize_int,
    values.normalize_yn,
    lambda raw: values.normalize_enum(raw, {"是": "是", "脱贫户": "脱贫户"}),
    identifiers.normalize_id,
    masking.mask_id,
    masking.mask_name,
    masking.mask_text,
    masking.safe_text,
    identifiers.looks_like_excel_number,
    lambda raw: identifiers.is_well_formed(identifiers.normalize_id(raw)),
    lambda raw: identifiers.checksum_ok(identifiers.normalize_id(raw) or ""),
]


@FUZZ
@given(raw=ANY_TEXT)
def test_no_normaliser_raises(raw: str) -> None:
    for normalise in NORMALISERS:
        result = normalise(raw)
        assert result is None or isinstance(result, str | bool)


@FUZZ
@given(raw=ANY_TEXT)
def test_normalisers_are_idempotent_on_their_output(raw: str) -> None:
    # Running twice changes nothing: the canonical text is a fixed point. A normaliser that
    # kept changing its own output would make reruns disagree with first runs.
    for normalise in (values.normalize_text, values.normalize_money, values.normalize_int):
        once = normalise(raw)
        assert normalise(once) == once


@FUZZ
@given(raw=ANY_TEXT)
def test_a_masked_text_keeps_no_id_number_or_phone(raw: str) -> None:
    for masked in (masking.mask_text(raw), masking.safe_text(raw) or ""):
        assert masking.ID_IN_TEXT.search(masked) is None
        assert masking.PHONE_IN_TEXT.search(masked) is None


@FUZZ
@given(
    number=st.integers(-(10**40), 10**40),
    grouped=st.booleans(),
    tail=st.sampled_from(["", ".0", ".000"]),
)
def test_normalize_int_is_the_number_without_leading_zeros(
    number: int, grouped: bool, tail: str
) -> None:
    text = (f"{number:,}" if grouped else f"{number:+d}".lstrip("+")) + tail

    assert values.normalize_int(text) == str(number)
    assert values.normalize_int(f"00{abs(number)}{tail}") == str(abs(number))


def test_normalize_int_takes_numbers_longer_than_int_does() -> None:
    # int() refuses more than 4300 digits; a cell of 5000 must still not fail the column
    assert values.normalize_int("-000" + "7" * 5000) == "-" + "7" * 5000
    assert values.normalize_int("-0000") == "0"

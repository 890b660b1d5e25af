"""Masking: IDs, phone numbers and names in any text; safe text; what an exception may say."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from transforms.config.contracts import contract_by_dataset
from transforms.parsing.identifiers import check_char
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import RawSheet
from transforms.privacy.masking import (
    ID_IN_TEXT,
    NameIndex,
    describe_error,
    mask_id,
    mask_name,
    mask_text,
    names_in_file,
    safe_text,
)
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.tables import create_schema, make_engine, person_identity


def _id(first17: str) -> str:
    return first17 + check_char(first17)


FEMALE_1949 = "11010519491231002X"  # from BRIEF.md
MALE_1990 = "530102199001011231"
# Sentinels: valid check characters, found nowhere else, so any hit is a leak.
SENTINEL = _id("53262619870312775")
SENTINEL_X = _id("44010620121201003")  # ends in X
LEGACY = SENTINEL[:6] + SENTINEL[8:17]  # the same person's 15-digit ID
NAME = "鲜于测漏"
OTHER_NAME = "皇甫测泄"
PHONE = "15877551234"
FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def _plain(text: str) -> list[str]:
    """Every sentinel the text still shows in the clear."""
    shown = [s for s in (SENTINEL, SENTINEL_X, LEGACY, NAME, OTHER_NAME, PHONE) if s in text]
    shown += [s for s in (SENTINEL.translate(FULL_WIDTH), PHONE.translate(FULL_WIDTH)) if s in text]
    return shown


# --- mask_id and mask_name (moved from transforms.parsing.identifiers) -------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (FEMALE_1949, "110105********002X"),
        (MALE_1990, "530102********1231"),
        ("5.30102199001011E+17", "5.****************17"),
        ("53010219900101123", "53*************23"),
        ("12345678", "12****78"),
        ("1234567", "1*****7"),
        ("12345", "1***5"),
        ("1234", "****"),
        ("1", "*"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_id(value: str | None, expected: str) -> None:
    assert mask_id(value) == expected


@pytest.mark.parametrize(
    "value", [FEMALE_1949, "5.30102199001011E+17", "G11010519491231002X", "x" * 40]
)
def test_mask_id_never_shows_more_than_ten_plain_characters(value: str) -> None:
    assert len(mask_id(value)) - mask_id(value).count("*") <= 10


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("张三", "张*"),
        ("王小明", "王**"),
        ("欧阳娜娜", "欧阳**"),
        ("诸葛亮", "诸葛*"),
        ("司马相如", "司马**"),
        ("欧阳", "欧*"),
        ("李", "*"),
        (" 张 三 ", "张*"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_name(name: str | None, expected: str) -> None:
    assert mask_name(name) == expected


# --- mask_text: shapes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"名单{SENTINEL}.xlsx", f"名单{mask_id(SENTINEL)}.xlsx"),
        (f"G{FEMALE_1949}", "G110105********002X"),
        (f"{SENTINEL}43", mask_id(SENTINEL + "43")),  # disability certificate
        (f"身份证号 {LEGACY}", f"身份证号 {mask_id(LEGACY)}"),
        ("5.30102199001011E+17", "5.****************17"),
        ("5.30102199001011e+17", "5.****************17"),
        (
            "５．３０１０２１９９００１０１１Ｅ＋１７",
            mask_id("５．３０１０２１９９００１０１１Ｅ＋１７"),
        ),
        (SENTINEL_X.lower(), mask_id(SENTINEL_X.lower())),
        (SENTINEL.translate(FULL_WIDTH), mask_id(SENTINEL.translate(FULL_WIDTH))),
        (SENTINEL_X.translate(FULL_WIDTH), mask_id(SENTINEL_X.translate(FULL_WIDTH))),
        # phone numbers keep 3 + 4 digits, in whatever grouping they came
        (f"户联系电话:{PHONE}", "户联系电话:158****1234"),
        ("158-7755-1234", "158-****-1234"),
        ("158 7755 1234", "158 **** 1234"),
        ("+86 15877551234", "+86 158****1234"),
        ("008615877551234", "0086158****1234"),
        (PHONE.translate(FULL_WIDTH), "１５８****１２３４"),
        # 户编号 (16-17 digits), amounts, dates, short numbers and longer runs stay readable
        ("户编号 5326260010020001", "户编号 5326260010020001"),
        ("户编号 53262600100200011", "户编号 53262600100200011"),
        ("1234.50 元, 2026-03-01, 12345678901", "1234.50 元, 2026-03-01, 12345678901"),
        ("158775512345", "158775512345"),  # 12 digits: not a phone
        ("6222" + SENTINEL, "6222" + SENTINEL),  # 22 digits: an account number, not an ID
        ("", ""),
    ],
)
def test_mask_text_shapes(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_mask_text_masks_every_id_and_phone_among_many() -> None:
    text = "；".join([SENTINEL, LEGACY, SENTINEL_X, PHONE, f"{NAME}{SENTINEL}电话{PHONE}"] * 3)
    masked = mask_text(text)
    assert _plain(masked) == [NAME]  # a name has no shape: NameIndex finds names
    assert _plain(mask_text(text, NameIndex([NAME]))) == []


_PIECES = st.sampled_from(
    [SENTINEL, LEGACY, SENTINEL_X, PHONE, NAME, "5.32626198703E+17", "户编号", "0001", " ", "，"]
)


@given(st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=12))
def test_mask_text_is_idempotent_and_leaves_no_sentinel(pieces: list[str]) -> None:
    names = NameIndex([NAME, "欧阳娜娜"])
    # a separator keeps two pieces from forming a longer digit run, which is not an ID
    text = "|".join(pieces)
    masked = mask_text(text, names)
    assert mask_text(masked, names) == masked
    assert _plain(masked) == []


# --- NameIndex ---------------------------------------------------------------------------------


def test_name_index_masks_the_longest_known_name_first() -> None:
    names = NameIndex(["鲜于测", NAME, "张三", "张三丰"])
    assert names.mask(f"户主{NAME}，配偶张三丰，邻居张三、鲜于测。") == (
        f"户主{mask_name(NAME)}，配偶张**，邻居张*、鲜**。"
    )


def test_name_index_skips_what_is_not_a_name() -> None:
    names = NameIndex(["李", "", None, float("nan"), 42, "--", "12", "欧阳", " 王 五 ", "ＡＢ"])
    assert len(names) == 2  # 王五 (blanks removed) and AB (NFKC)
    assert "王五" in names and "AB" in names and "欧阳" not in names
    assert names.mask("李四、欧阳娜娜、王五、AB") == "李四、欧阳娜娜、王*、A*"


def test_with_names_leaves_the_original_alone() -> None:
    base = NameIndex([NAME])
    more = base.with_names([OTHER_NAME])
    assert (len(base), len(more)) == (1, 2)
    assert base.mask(OTHER_NAME) == OTHER_NAME
    assert more.mask(f"{NAME}{OTHER_NAME}") == f"{mask_name(NAME)}{mask_name(OTHER_NAME)}"


def test_an_empty_index_changes_nothing() -> None:
    assert NameIndex().mask(NAME) == NAME


def test_name_index_is_cheap_for_a_county(capsys: pytest.CaptureFixture[str]) -> None:
    # 100,000 distinct three-character names over a realistic spread of surnames
    surnames = (
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    )
    given_names = [chr(0x4E00 + i) for i in range(2000)]
    people = [s + a + b for s in surnames for a in given_names[:50] for b in given_names[:50]]
    people = people[:100_000]
    started = time.perf_counter()
    names = NameIndex(people)
    built = time.perf_counter() - started
    text = ("城关镇新村户编号5326260010020001，" + people[-1] + "的家庭收入下降，") * 10
    started = time.perf_counter()
    for _ in range(1000):
        masked = names.mask(text)
    per_text = (time.perf_counter() - started) / 1000
    assert people[-1] not in masked and len(names) == 100_000
    with capsys.disabled():
        print(f"\nNameIndex: {built:.2f} s for 100k names, ", end="")
        print(f"{per_text * 1e6:.0f} µs per text of {len(text)} characters")
    # generous bounds for a busy CI machine; the measured figures are in the report
    assert built < 5 and per_text < 0.01


def test_names_in_file() -> None:
    contract = contract_by_dataset("illness")
    sheet = RawSheet(
        "城关镇",
        [
            (1, ["姓名", "身份证号", "疾病类别", "病种", "确诊日期"]),
            (2, [NAME, SENTINEL, "大病", "肺癌", "2026-01-05"]),
            (3, [None, SENTINEL_X, "大病", "肺癌", "2026-01-05"]),
            (4, [" 王 五 ", SENTINEL_X, "大病", OTHER_NAME, "2026-01-05"]),
        ],
    )
    found = names_in_file(contract, to_frame([sheet], [contract]).frame)
    assert NAME in found and "王五" in NameIndex(found)
    assert OTHER_NAME not in found  # 病种 is personal, but not a name


# --- safe_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", ""),
        ("第一行\n第二行\t列", "第一行\n第二行\t列"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("a\x00b\x07c\x1bd\x7fe\x85f", "abcdef"),
        ("\u202egnp.exe", "gnp.exe"),  # a bidi override that would disguise a file name
        ("bad \udcff byte", "bad \ufffd byte"),  # a lone surrogate cannot be stored as UTF-8
    ],
)
def test_safe_text_cleans(text: str | None, expected: str | None) -> None:
    assert safe_text(text) == expected


@pytest.mark.parametrize("hide", ["\x00", "\u200b", "\ufeff", "\x1f", "\u2060"])
def test_an_invisible_character_inside_an_id_does_not_hide_it(hide: str) -> None:
    text = f"{SENTINEL[:9]}{hide}{SENTINEL[9:]} {PHONE[:5]}{hide}{PHONE[5:]}"
    assert safe_text(text) == f"{mask_id(SENTINEL)} {mask_text(PHONE)}"


def test_safe_text_cuts_after_masking() -> None:
    text = "x" * 10 + SENTINEL
    cut = safe_text(text, limit=20)
    assert cut == "x" * 10 + mask_id(SENTINEL)[:9] + "…"
    assert safe_text("x" * 30, limit=30) == "x" * 30
    assert safe_text("x" * 31, limit=30) == "x" * 29 + "…"
    assert safe_text("abc", limit=1) == "…"
    with pytest.raises(ValueError, match="limit"):
        safe_text("abc", limit=0)


def test_safe_text_masks_names_with_the_index() -> None:
    assert safe_text(f"{NAME}的文件", names=NameIndex([NAME])) == f"{mask_name(NAME)}的文件"


def test_safe_text_of_a_huge_text() -> None:
    text = (f"{SENTINEL} {NAME} " + "数据" * 100) * 5000  # about 1.1 million characters
    started = time.perf_counter()
    masked = safe_text(text, names=NameIndex([NAME]))
    assert masked is not None and _plain(masked) == []
    assert time.perf_counter() - started < 10


@given(st.text(max_size=60), st.sampled_from([SENTINEL, LEGACY, PHONE]), st.text(max_size=60))
def test_safe_text_never_shows_an_id_whatever_surrounds_it(
    before: str, secret: str, after: str
) -> None:
    # a digit right next to it makes a longer number, which is not an ID or phone number
    text = f"{before}|{secret}|{after}"
    assert secret not in (safe_text(text) or "")


# --- describe_error ----------------------------------------------------------------------------


def _no_plaintext(text: str) -> None:
    assert _plain(text) == [], text
    assert not ID_IN_TEXT.search(text), text


def test_describe_error_of_plain_exceptions() -> None:
    names = NameIndex([NAME])
    error = ValueError(f"bad cell {NAME} {SENTINEL} {PHONE}\x00")
    described = describe_error(error, names)
    assert described.startswith("ValueError: bad cell ")
    _no_plaintext(described)
    assert "\x00" not in described
    assert len(describe_error(RuntimeError("x" * 5000))) < 1100


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'w.sqlite'}"
    databases: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return databases()


class _Diagnostic:
    message_primary = (
        'connection to server at "127.0.0.1", port 5432 failed: role "county" '
        f'rejected "{NAME}" with value "{SENTINEL}"'
    )


class _DriverError(Exception):
    """Shaped like a psycopg error: a SQLSTATE and the server's diagnostic."""

    sqlstate = "08001"
    diag = _Diagnostic()


def test_describe_error_keeps_plain_words_of_the_server_message() -> None:
    error = _DriverError(f"first line\nDETAIL:  Key (id_number)=({SENTINEL}) already exists.")
    wrapped = sa.exc.OperationalError("SELECT :id", {"id": SENTINEL}, error)
    expected = (
        'connection to server at "127.0.0.1", port 5432 failed: role "county" '
        f'rejected "…" with value "{mask_id(SENTINEL)}"'
    )
    assert describe_error(error) == f"_DriverError (08001): {expected}"
    assert describe_error(wrapped) == f"OperationalError (_DriverError, 08001): {expected}"


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A plain engine (no hide_parameters: describe_error must not need it) with a table whose
    key is a plaintext ID, as a bureau's row would give it."""
    engine = sa.create_engine(_url(request, request.param, tmp_path))
    table = f"leak_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} (id_number VARCHAR(18) PRIMARY KEY, name VARCHAR(8), "
                "age INTEGER CHECK (age >= 0))"
            )
        )
    try:
        yield table, engine
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        engine.dispose()


def _raised(engine: Engine, statement: str, params: dict[str, object]) -> BaseException:
    with pytest.raises(sa.exc.SQLAlchemyError) as caught, engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    return caught.value


@pytest.mark.parametrize(
    ("case", "value", "age"),
    [
        ("unique violation", SENTINEL, "0"),
        ("value too long", f"{NAME}{SENTINEL}", "0"),
        ("NUL character", f"{NAME}\x00{SENTINEL}", "0"),
        ("check violation", "x", "-1"),
        ("not an integer", "y", f"{NAME}{SENTINEL}"),
    ],
)
def test_describe_error_of_database_errors_holds_no_plaintext(
    database: tuple[str, Engine], case: str, value: str, age: str
) -> None:
    table, engine = database
    if engine.dialect.name == "sqlite" and case not in ("unique violation", "check violation"):
        pytest.skip("SQLite stores it: neither lengths nor types are enforced")
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {table} VALUES (:id, :name, 1)"),
            {"id": SENTINEL, "name": NAME},
        )
    cast = "CAST(:age AS INTEGER)" if engine.dialect.name == "postgresql" else ":age"
    error = _raised(
        engine,
        f"INSERT INTO {table} VALUES (:id, :name, {cast})",
        {"id": value, "name": NAME, "age": age},
    )
    raw = str(error)
    described = describe_error(error)
    _no_plaintext(described)
    assert described.startswith(type(error).__name__ + " (")
    assert _plain(raw), raw  # the raw text carries the row: what recorded_step stored before
    if engine.dialect.name == "postgresql":
        state = {
            "unique violation": "23505",
            "value too long": "22001",
            "NUL character": None,  # refused by the driver before it reaches the server
            "check violation": "23514",
            "not an integer": "22P02",
        }[case]
        if state:
            assert f", {state})" in described
        if case == "not an integer":
            assert 'invalid input syntax for type integer: "…"' in described


def test_describe_error_of_a_statement_that_could_not_be_prepared(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("born", sa.Date))
    table.create(engine)
    with pytest.raises(sa.exc.StatementError) as caught, engine.begin() as conn:
        conn.execute(table.insert(), {"born": f"{NAME}{SENTINEL}"})
    described = describe_error(caught.value, NameIndex([NAME]))
    _no_plaintext(described)
    assert described.startswith("StatementError: TypeError: ")


# --- known_names -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_known_names_reads_the_restricted_table(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(_url(request, backend, tmp_path))
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            person_identity.insert(),
            [
                {
                    "person_key": f"{i:064x}",
                    "id_number": SENTINEL,
                    "name": name,
                    "first_manifest_id": 1,
                    "last_manifest_id": 1,
                }
                for i, name in enumerate([NAME, OTHER_NAME, NAME, None])
            ],
        )
    with engine.connect() as conn:
        names = known_names(conn)
    engine.dispose()
    assert len(names) == 2
    assert names.mask(f"{NAME}/{OTHER_NAME}") == f"{mask_name(NAME)}/{mask_name(OTHER_NAME)}"

"""The person key (HMAC) and its rotation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from transforms.config.settings import Settings
from transforms.parsing.identifiers import check_char
from transforms.pipeline import steps as pipeline
from transforms.privacy.keys import (
    MissingSecretError,
    PersonKeyMismatchError,
    check_secret,
    person_key,
    person_keyer,
)
from transforms.warehouse.person_keys import rotate_person_keys

OLD = "old-secret-" + "o" * 32
NEW = "new-secret-" + "n" * 32
A = "53262619800101001" + check_char("53262619800101001")
ROSTER = (
    "乡(镇),行政村,户编号,姓名,证件号码,与户主关系,户类型,劳动技能,年度,工资性收入,"
    "生产经营性收入,财产性收入,转移性收入,生产经营性支出,家庭人口数\n"
    f"城关镇,新村,0001,张三,{A},户主,脱贫户,普通劳动力,2025,9000,0,0,0,0,1\n"
)
ILLNESS = f"姓名,身份证号,疾病类别,确诊日期\n张三,{A},大病,2026-01-05\n"


def _hmac(secret: str, id_number: str) -> str:
    """HMAC-SHA256 of the ID, computed here rather than through the code under test: a plain
    hash in person_key's place must fail these tests."""
    return hmac.new(secret.encode(), id_number.encode(), hashlib.sha256).hexdigest()


def test_the_key_is_an_hmac_of_the_id() -> None:
    key = person_key(OLD.encode(), A)
    assert key == _hmac(OLD, A)
    assert person_key(NEW.encode(), A) == _hmac(NEW, A) != key
    assert key != hashlib.sha256(A.encode()).hexdigest() and A not in key


def test_the_keyer_gives_the_key_of_every_id_it_is_called_with() -> None:
    """person_keyer copies one keyed state per ID: no ID's bytes may leak into the next key."""
    keyer = person_keyer(OLD.encode())
    for value in [A, "", "=1+2", "a\x00b", A + A, "11010119900307123x", A]:
        assert keyer(value) == person_key(OLD.encode(), value) == _hmac(OLD, value)
    assert person_keyer(NEW.encode())(A) == _hmac(NEW, A)
    with pytest.raises(UnicodeEncodeError):
        keyer("张三")
    with pytest.raises(UnicodeEncodeError):
        person_key(OLD.encode(), "张三")


def test_a_missing_or_short_secret_is_explained() -> None:
    with pytest.raises(MissingSecretError, match="PERSON_KEY_SECRET is not set"):
        check_secret(None)
    with pytest.raises(MissingSecretError, match="too short"):
        check_secret("short")


@pytest.fixture(params=["sqlite", "postgres"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "postgres":
        factory: Callable[[], str] = request.getfixturevalue("postgres_databases")
        url = factory()
    else:
        url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    settings = Settings(tmp_path / "data", url, landing_stable_seconds=0, person_key_secret=OLD)
    for bureau, name, text in (
        ("rural_revitalization", "花名册.csv", ROSTER),
        ("health", "大病.csv", ILLNESS),
    ):
        (settings.landing_dir / bureau).mkdir(parents=True)
        (settings.landing_dir / bureau / name).write_text(text, encoding="utf-8")
    engine = pipeline.prepare(settings)
    groups = pipeline.discover(settings, engine, "r")
    results = [
        r
        for g in groups
        for r in pipeline.parse_and_validate(settings, engine, "r", g["dataset"], g["manifest_ids"])
    ]
    pipeline.load(
        settings, engine, "r", pipeline.resolve_households(settings, engine, "r", results)
    )
    dimensions = pipeline.dimensions(settings, engine, "r")
    pipeline.snapshot(settings, engine, "r", dt.date(2026, 3, 1), dimensions)
    return engine


def _keys(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        keys = {r[0] for r in conn.exec_driver_sql("select person_key from stg_roster")}
        keys |= {r[0] for r in conn.exec_driver_sql("select person_key from stg_illness")}
        keys |= {r[0] for r in conn.exec_driver_sql("select person_key from dim_person")}
    return keys


def test_rotation_rekeys_every_table_in_one_go(loaded: sa.Engine) -> None:
    assert _keys(loaded) == {_hmac(OLD, A)}
    with pytest.raises(PersonKeyMismatchError):
        rotate_person_keys(loaded, NEW, OLD)  # the wrong current secret changes nothing
    assert _keys(loaded) == {_hmac(OLD, A)}

    assert rotate_person_keys(loaded, OLD, NEW) == 1
    assert _keys(loaded) == {_hmac(NEW, A)}
    with loaded.connect() as conn:
        matched = conn.exec_driver_sql(
            "select count(*) from stg_illness i join dim_person p on p.person_key = i.person_key"
        ).scalar_one()
    assert matched == 1  # joins still hold after the rotation
    loaded.dispose()

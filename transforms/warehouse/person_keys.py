"""The warehouse's restricted record of persons: their plaintext identities (upserted with each
loaded file), the fingerprint of the secret their keys were made with, re-keying under a new
secret, and the names it holds (to mask them wherever they turn up). The rules themselves (the
key, masking) live in transforms.privacy and touch no database."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.privacy.keys import (
    _IDENTITIES_CHECKED,
    FINGERPRINT_KEY,
    check_secret,
    key_fingerprint,
    mismatch_error,
    person_key,
)
from transforms.privacy.masking import NameIndex
from transforms.warehouse.tables import (
    IDENTITY_PHONE_COLUMNS,
    RESTRICTED_SCHEMA,
    all_staging_tables,
    metadata,
    person_identity,
    quarantine,
    warehouse_meta,
)


def verify_person_key(engine: Any, secret: str | None) -> bytes:
    """Check the secret against the warehouse before anything is touched; returns it as bytes.

    The first run records the secret's fingerprint. A warehouse that predates the fingerprint is
    checked by re-keying some stored identities, then gets its fingerprint.
    """

    key = check_secret(secret)
    given = key_fingerprint(key)
    with engine.begin() as conn:
        stored = conn.execute(
            sa.select(warehouse_meta.c.value).where(warehouse_meta.c.key == FINGERPRINT_KEY)
        ).scalar()
        if stored is not None:
            if not hmac.compare_digest(stored, given):
                raise mismatch_error(stored, given)
            return key
        sample = conn.execute(
            sa.select(person_identity.c.person_key, person_identity.c.id_number)
            .order_by(person_identity.c.person_key)
            .limit(_IDENTITIES_CHECKED)
        ).all()
        if any(person_key(key, id_number) != stored_key for stored_key, id_number in sample):
            raise mismatch_error(None, given)
        _store_fingerprint(conn, given, dt.datetime.now(dt.UTC))
    return key


def _store_fingerprint(conn: Any, fingerprint: str, now: dt.datetime) -> None:

    conn.execute(warehouse_meta.delete().where(warehouse_meta.c.key == FINGERPRINT_KEY))
    conn.execute(
        sa.insert(warehouse_meta).values(key=FINGERPRINT_KEY, value=fingerprint, updated_at=now)
    )


def rotate_person_keys(engine: Any, old_secret: str, new_secret: str) -> int:
    """Re-key every person under a new secret, in one transaction; returns persons re-keyed.

    The restricted table maps each key to its ID, so the new key is computed from the ID; then
    every table with a `person_key` column is rewritten through a temporary mapping table.
    Refuses (and changes nothing) when the old secret does not reproduce the stored keys.
    """

    old, new = check_secret(old_secret), check_secret(new_secret)
    if old == new:
        raise ValueError("the new secret equals the old one")
    verify_person_key(engine, old_secret)
    all_staging_tables()
    keyed = [t for t in metadata.sorted_tables if "person_key" in t.c and t is not person_identity]
    with engine.begin() as conn:
        identities = conn.execute(
            sa.select(person_identity.c.person_key, person_identity.c.id_number)
        ).all()
        mapping = []
        for key, id_number in identities:
            if person_key(old, id_number) != key:
                raise mismatch_error(None, key_fingerprint(old))
            mapping.append({"old_key": key, "new_key": person_key(new, id_number)})
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE person_key_rotation "
            "(old_key VARCHAR(64) PRIMARY KEY, new_key VARCHAR(64) NOT NULL)"
        )
        rotation = sa.table("person_key_rotation", sa.column("old_key"), sa.column("new_key"))
        if mapping:
            conn.execute(rotation.insert(), mapping)
        for table in [*keyed, person_identity]:
            new_key = (
                sa.select(rotation.c.new_key)
                .where(rotation.c.old_key == table.c.person_key)
                .scalar_subquery()
            )
            conn.execute(
                table.update()
                .where(table.c.person_key.in_(sa.select(rotation.c.old_key)))
                .values(person_key=new_key)
            )
        conn.exec_driver_sql("DROP TABLE person_key_rotation")
        # the refused rows still waiting for their person hold hashes under the old secret, and
        # their plaintext is long gone: they can no longer be tied
        conn.execute(
            quarantine.update().where(quarantine.c.tie_keys.is_not(None)).values(tie_keys=None)
        )
        _store_fingerprint(conn, key_fingerprint(new), dt.datetime.now(dt.UTC))
    return len(mapping)


def identity_names(conn: Connection, keys: Collection[str]) -> dict[str, str | None]:
    """The plaintext names of some persons (restricted: for matching, never for showing)."""
    found: dict[str, str | None] = {}
    wanted = list(keys)
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            sa.select(person_identity.c.person_key, person_identity.c.name).where(
                person_identity.c.person_key.in_(wanted[start : start + 500])
            )
        ).all()
        found.update({key: name for key, name in rows})
    return found


def known_names(conn: Connection) -> NameIndex:
    """Every name in the warehouse's restricted person_identity table, as a NameIndex."""
    names = conn.execute(
        sa.select(person_identity.c.name).where(person_identity.c.name.is_not(None)).distinct()
    ).scalars()
    return NameIndex(names)


def upsert_identities(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Record plaintext identities in the restricted table; a later file updates the name."""
    upsert_identity_columns(conn, {c: [row.get(c) for row in rows] for c in _IDENTITY_COLUMNS})


_IDENTITY_COLUMNS = (
    "person_key",
    "id_number",
    "name",
    "first_manifest_id",
    "last_manifest_id",
    *IDENTITY_PHONE_COLUMNS,
)
# what a later file changes of a known person: a name or phone it gives, and its last file
_UPDATES = (
    *(f"{c} = coalesce(excluded.{c}, existing.{c})" for c in ("name", *IDENTITY_PHONE_COLUMNS)),
    "last_manifest_id = excluded.last_manifest_id",
)
_BATCH = 20_000


def upsert_identity_columns(conn: Connection, columns: Mapping[str, Sequence[Any]]) -> None:
    """upsert_identities with the identities as columns (person_identity's, one value per
    person): the way the load hands them over, without a dict per person."""
    values = [columns[c] for c in _IDENTITY_COLUMNS]
    if not values[0]:
        return
    if conn.dialect.name == "postgresql":
        _copy_upsert_identities(conn, values)
        return
    # SQLite keeps the restricted table beside the others (no schema). One prepared statement
    # executed over the rows by the DBAPI: SQLAlchemy's per-row parameter handling cost more
    # than the upsert itself.
    quoted = ", ".join(f'"{c}"' for c in _IDENTITY_COLUMNS)
    statement = (
        f'INSERT INTO "{person_identity.name}" AS existing ({quoted}) '
        f"VALUES ({', '.join('?' for _ in _IDENTITY_COLUMNS)}) "
        f"ON CONFLICT (person_key) DO UPDATE SET {', '.join(_UPDATES)}"
    )
    for start in range(0, len(values[0]), _BATCH):
        batch = [c[start : start + _BATCH] for c in values]
        conn.exec_driver_sql(statement, list(zip(*batch, strict=True)))


def _copy_upsert_identities(conn: Connection, values: list[Sequence[Any]]) -> None:
    """PostgreSQL: COPY into a temporary table and merge it in one INSERT ... ON CONFLICT, the
    way bulk_load does (row-by-row upserts took longer than loading the staging rows)."""
    target = f'"{RESTRICTED_SCHEMA}"."{person_identity.name}"'
    temp = "copy_person_identity"
    quoted = ", ".join(f'"{c}"' for c in _IDENTITY_COLUMNS)
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("no database connection for COPY")
    with driver.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{temp}"')
        cursor.execute(
            f'CREATE TEMP TABLE "{temp}" ON COMMIT DROP AS '
            f"SELECT {quoted} FROM {target} WITH NO DATA"
        )
        with cursor.copy(f'COPY "{temp}" ({quoted}) FROM STDIN') as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)
        cursor.execute(
            f'INSERT INTO {target} AS existing ({quoted}) SELECT {quoted} FROM "{temp}" '
            f"ON CONFLICT (person_key) DO UPDATE SET {', '.join(_UPDATES)}"
        )
        cursor.execute(f'DROP TABLE "{temp}"')

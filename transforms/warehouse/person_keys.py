"""What the warehouse knows of persons that privacy rules need: the fingerprint of the secret
its person keys were made with, re-keying under a new secret, and the names it holds (to mask
them wherever they turn up). The rules themselves (the key, masking) live in transforms.privacy
and touch no database."""

from __future__ import annotations

import datetime as dt
import hmac
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
    all_staging_tables,
    metadata,
    person_identity,
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
        _store_fingerprint(conn, key_fingerprint(new), dt.datetime.now(dt.UTC))
    return len(mapping)


def known_names(conn: Connection) -> NameIndex:
    """Every name in the warehouse's restricted person_identity table, as a NameIndex."""
    names = conn.execute(
        sa.select(person_identity.c.name).where(person_identity.c.name.is_not(None)).distinct()
    ).scalars()
    return NameIndex(names)

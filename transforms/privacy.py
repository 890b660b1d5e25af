"""Privacy by construction: the person key is an HMAC of the normalised ID.

Joins everywhere use the key; the plaintext ID and name are kept only in the restricted
`person_identity` table. The secret comes from configuration (PERSON_KEY_SECRET, or the Airflow
connection the DAG reads it from), never from the repository.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import sqlalchemy as sa

from transforms.contracts import Column, ColumnType
from transforms.masking import is_name_column, mask_id, mask_name, mask_phone, mask_text
from transforms.settings import SettingsError

MIN_SECRET_LENGTH = 32
# warehouse_meta key of the fingerprint of the secret the warehouse's person keys were made with
FINGERPRINT_KEY = "person_key_fingerprint"
# identities re-keyed to check a secret against a warehouse that predates the fingerprint
_IDENTITIES_CHECKED = 20


class MissingSecretError(SettingsError):
    pass


class PersonKeyMismatchError(SettingsError):
    """The secret is not the one the warehouse's person keys were made with: every person would
    get a second identity (household sizes double, false warnings), so nothing may run."""


def check_secret(secret: str | None) -> bytes:
    if not secret:
        raise MissingSecretError(
            "PERSON_KEY_SECRET is not set. It keys the HMAC that replaces ID numbers in the "
            "warehouse. `make run` creates a local one; in production set the environment "
            "variable or the Airflow connection `county_person_key` (its password)."
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise MissingSecretError(
            f"PERSON_KEY_SECRET is too short ({len(secret)} characters, at least "
            f"{MIN_SECRET_LENGTH} needed)"
        )
    return secret.encode("utf-8")


def person_key(secret: bytes, id_number: str) -> str:
    """64 hex characters; the same ID always gives the same key under the same secret."""
    return hmac.new(secret, id_number.encode("ascii"), hashlib.sha256).hexdigest()


def key_fingerprint(secret: bytes) -> str:
    """Identifies a secret without revealing it: an HMAC of a fixed label under the secret."""
    return hmac.new(secret, b"county-person-key-fingerprint:v1", hashlib.sha256).hexdigest()


def _mismatch(stored: str | None, given: str) -> PersonKeyMismatchError:
    shown = (
        f" (the warehouse has fingerprint …{stored[-8:]}, this secret gives …{given[-8:]})"
        if stored
        else ""
    )
    return PersonKeyMismatchError(
        "PERSON_KEY_SECRET is not the secret this warehouse's person keys were made with"
        + shown
        + ". Nothing was changed. Set PERSON_KEY_SECRET (or the password of the Airflow "
        "connection county_person_key) back to the original secret. To change the secret, run "
        "`python -m transforms rotate-person-key` with NEW_PERSON_KEY_SECRET set; it re-keys "
        "every person in one transaction."
    )


def verify_person_key(engine: Any, secret: str | None) -> bytes:
    """Check the secret against the warehouse before anything is touched; returns it as bytes.

    The first run records the secret's fingerprint. A warehouse that predates the fingerprint is
    checked by re-keying some stored identities, then gets its fingerprint.
    """
    from transforms.warehouse import person_identity, warehouse_meta

    key = check_secret(secret)
    given = key_fingerprint(key)
    with engine.begin() as conn:
        stored = conn.execute(
            sa.select(warehouse_meta.c.value).where(warehouse_meta.c.key == FINGERPRINT_KEY)
        ).scalar()
        if stored is not None:
            if not hmac.compare_digest(stored, given):
                raise _mismatch(stored, given)
            return key
        sample = conn.execute(
            sa.select(person_identity.c.person_key, person_identity.c.id_number)
            .order_by(person_identity.c.person_key)
            .limit(_IDENTITIES_CHECKED)
        ).all()
        if any(person_key(key, id_number) != stored_key for stored_key, id_number in sample):
            raise _mismatch(None, given)
        _store_fingerprint(conn, given, dt.datetime.now(dt.UTC))
    return key


def _store_fingerprint(conn: Any, fingerprint: str, now: dt.datetime) -> None:
    from transforms.warehouse import warehouse_meta

    conn.execute(warehouse_meta.delete().where(warehouse_meta.c.key == FINGERPRINT_KEY))
    conn.execute(
        sa.insert(warehouse_meta).values(key=FINGERPRINT_KEY, value=fingerprint, updated_at=now)
    )


def stored_value(column: Column, value: object) -> object:
    """What the warehouse outside the restricted schema keeps of a cell: ID columns masked,
    name columns masked, and free text with every ID or phone number typed into it masked (a
    clerk pastes an ID into 就业单位 as readily as into 身份证号)."""
    if value is None:
        return None
    if column.type is ColumnType.ID:
        return mask_id(str(value))
    if column.type is ColumnType.PHONE:
        return mask_phone(str(value))
    if column.personal:
        return mask_name(str(value)) if is_name_column(column) else mask_text(str(value))
    if column.type is ColumnType.TEXT:
        return mask_text(str(value))
    return value


def rotate_person_keys(engine: Any, old_secret: str, new_secret: str) -> int:
    """Re-key every person under a new secret, in one transaction; returns persons re-keyed.

    The restricted table maps each key to its ID, so the new key is computed from the ID; then
    every table with a `person_key` column is rewritten through a temporary mapping table.
    Refuses (and changes nothing) when the old secret does not reproduce the stored keys.
    """
    from transforms.warehouse import all_staging_tables, metadata, person_identity

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
                raise _mismatch(None, key_fingerprint(old))
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

"""Privacy by construction: the person key is an HMAC of the normalised ID.

Joins everywhere use the key; the plaintext ID and name are kept only in the restricted
`person_identity` table. The secret comes from configuration (PERSON_KEY_SECRET, or the Airflow
connection the DAG reads it from), never from the repository.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from transforms.contracts import Column, ColumnType
from transforms.masking import is_name_column, mask_id, mask_name

MIN_SECRET_LENGTH = 32


class MissingSecretError(RuntimeError):
    pass


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


def stored_value(column: Column, value: object) -> object:
    """What the warehouse outside the restricted schema keeps of a personal column."""
    if value is None:
        return None
    if column.type is ColumnType.ID:
        return mask_id(str(value))
    if column.personal:
        return mask_name(str(value)) if is_name_column(column) else value
    return value


class KeyMismatchError(RuntimeError):
    pass


def rotate_person_keys(engine: Any, old_secret: str, new_secret: str) -> int:
    """Re-key every person under a new secret, in one transaction; returns persons re-keyed.

    The restricted table maps each key to its ID, so the new key is computed from the ID; then
    every table with a `person_key` column is rewritten through a temporary mapping table.
    Refuses (and changes nothing) when the old secret does not reproduce the stored keys.
    """
    import sqlalchemy as sa

    from transforms.warehouse import all_staging_tables, metadata, person_identity

    old, new = check_secret(old_secret), check_secret(new_secret)
    if old == new:
        raise ValueError("the new secret equals the old one")
    all_staging_tables()
    keyed = [t for t in metadata.sorted_tables if "person_key" in t.c and t is not person_identity]
    with engine.begin() as conn:
        identities = conn.execute(
            sa.select(person_identity.c.person_key, person_identity.c.id_number)
        ).all()
        mapping = []
        for key, id_number in identities:
            if person_key(old, id_number) != key:
                raise KeyMismatchError(
                    "the current secret does not reproduce the stored person keys; nothing changed"
                )
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
    return len(mapping)

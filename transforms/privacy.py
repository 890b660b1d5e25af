"""Privacy by construction: the person key is an HMAC of the normalised ID.

Joins everywhere use the key; the plaintext ID and name are kept only in the restricted
`person_identity` table. The secret comes from configuration (PERSON_KEY_SECRET, or the Airflow
connection the DAG reads it from), never from the repository.
"""

from __future__ import annotations

import hashlib
import hmac

from transforms.contracts import Column, ColumnType
from transforms.identifiers import mask_id, mask_name

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
        return mask_name(str(value)) if column.name.endswith("name") else value
    return value

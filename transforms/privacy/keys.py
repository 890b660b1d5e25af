"""Privacy by construction: the person key is an HMAC of the normalised ID.

Joins everywhere use the key; the plaintext ID and name are kept only in the restricted
`person_identity` table. The secret comes from configuration (PERSON_KEY_SECRET, or the Airflow
connection the DAG reads it from), never from the repository.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from transforms.config.contracts import Column, ColumnType
from transforms.config.settings import SettingsError
from transforms.privacy.masking import is_name_column, mask_id, mask_name, mask_phone, mask_text

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


def person_keyer(secret: bytes) -> Callable[[str], str]:
    """person_key under one secret, as a function of the ID alone: the HMAC's keyed state is
    computed once and copied per ID (a quarter faster, for the hundreds of thousands of IDs a
    county's files hold)."""
    keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def key(id_number: str) -> str:
        state = keyed.copy()
        state.update(id_number.encode("ascii"))
        return state.hexdigest()

    return key


def name_key(secret: bytes, normalized_name: str) -> str:
    """A name's HMAC under the person-key secret, apart from any ID's (its own prefix): lets a
    later run compare a refused row's name with a roster person's without keeping it."""
    return hmac.new(
        secret, b"name\x00" + normalized_name.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def key_fingerprint(secret: bytes) -> str:
    """Identifies a secret without revealing it: an HMAC of a fixed label under the secret."""
    return hmac.new(secret, b"county-person-key-fingerprint:v1", hashlib.sha256).hexdigest()


def mismatch_error(stored: str | None, given: str) -> PersonKeyMismatchError:
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


def stored_value(column: Column, value: object) -> object:
    """What the warehouse outside the restricted schema keeps of a cell: ID columns masked,
    name columns masked, and free text with every ID or phone number typed into it masked (a
    clerk pastes an ID into 就业单位 as readily as into 身份证号)."""
    return None if value is None else stored_converter(column)(value)


def stored_converter(column: Column) -> Callable[[object], object]:
    """stored_value for one column's non-blank values, its choice made once for the column (a
    load stores hundreds of thousands of values per column)."""
    if column.type is ColumnType.ID:
        return lambda value: mask_id(str(value))
    if column.type is ColumnType.PHONE:
        return lambda value: mask_phone(str(value))
    if column.personal:
        if is_name_column(column):
            return lambda value: mask_name(str(value))
        return lambda value: mask_text(str(value))
    if column.type is ColumnType.TEXT:
        return lambda value: mask_text(str(value))
    return _as_is


def _as_is(value: object) -> object:
    return value

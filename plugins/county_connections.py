"""Settings a deployment may keep in Airflow connections instead of the environment.

    county_person_key   its password is PERSON_KEY_SECRET (the HMAC secret of the person keys)
    county_warehouse    a postgres (or sqlite) connection: WAREHOUSE_URL, the driver chosen by
                        the pipeline (postgres://... becomes postgresql+psycopg://...). With
                        COUNTIES, its database name carries {county}, e.g. warehouse_{county}.

The environment wins: a variable that is set is used as it is, and a connection that does not
exist is simply not used (the pipeline then explains what to configure). The lookup needs a
running Airflow task (or AIRFLOW_CONN_<ID> variables), so the DAG's tasks call `environment()`
and hand the result to load_settings.
"""

from __future__ import annotations

from typing import Any

from transforms.config.environment import Environment, read_environment
from transforms.config.settings import warehouse_url_from_uri

PERSON_KEY_CONNECTION = "county_person_key"
WAREHOUSE_CONNECTION = "county_warehouse"


def connection(conn_id: str) -> Any | None:
    """The Airflow connection, or None when the deployment has not created it."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def environment(env: Environment | None = None) -> Environment:
    """The typed environment, with what it leaves unset taken from the connections."""
    env = env or read_environment()
    update: dict[str, str] = {}
    if not env.person_key_secret:
        person_key = connection(PERSON_KEY_CONNECTION)
        if person_key is not None and person_key.password:
            update["person_key_secret"] = person_key.password
    if not env.warehouse_url:
        warehouse = connection(WAREHOUSE_CONNECTION)
        if warehouse is not None:
            update["warehouse_url"] = warehouse_url_from_uri(warehouse.get_uri())
    return env.model_copy(update=update) if update else env

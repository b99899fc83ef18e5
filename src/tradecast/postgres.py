"""The blocking PostgreSQL pool the journal and the desk store share the recipe of."""

from __future__ import annotations

from typing import Any

SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('tradecast.schema'))"
"""Two replicas starting together both run CREATE ... IF NOT EXISTS, which can still collide
in the catalog: taken in the creating transaction, it makes the second one wait."""


def open_pool_with_schema(
    url: str, schema: str, *, autocommit: bool, pool_size: int, timeout_s: float
) -> Any:
    """An open psycopg ``ConnectionPool`` (checked connections, so it recovers after an
    outage) whose database has ``schema``; raises what psycopg raised, the pool closed."""
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=pool_size,
        timeout=timeout_s,
        kwargs={"autocommit": autocommit, "connect_timeout": int(timeout_s)},
        check=ConnectionPool.check_connection,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=timeout_s)
        with pool.connection() as conn, conn.transaction():
            conn.execute(SCHEMA_LOCK)
            conn.execute(schema)
    except Exception:
        pool.close()
        raise
    return pool

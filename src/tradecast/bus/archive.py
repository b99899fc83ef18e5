"""A durable copy of every published event, for the events a stream loses (scale-out).

Redis trims its streams and, configured as a cache, loses them when it restarts; the archive
in PostgreSQL keeps each event under its stream id so a subscriber resuming from an id the
stream no longer holds still gets everything after it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tradecast.bus.base import parse_event_id
from tradecast.domain import Channel, StreamEvent
from tradecast.errors import ArchiveUnavailable
from tradecast.logs import get_logger
from tradecast.postgres import SCHEMA_LOCK

log = get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_events (
    channel TEXT NOT NULL,
    ms      BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    event   TEXT NOT NULL,
    PRIMARY KEY (channel, ms, seq)
);
"""


@runtime_checkable
class EventArchive(Protocol):
    """Published events by channel and id."""

    async def append(self, event: StreamEvent) -> None:
        """Keep ``event`` (which has its id); storing the same id twice keeps one."""
        ...

    async def read(self, channel: Channel, after: str, upto: str | None) -> list[StreamEvent]:
        """Events of ``channel`` with ids in (``after``, ``upto``] (no upper bound: None),
        oldest first."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class PostgresEventArchive:
    """:class:`EventArchive` in a PostgreSQL table (an async connection pool)."""

    def __init__(self, url: str, *, pool_size: int = 4, timeout_s: float = 5.0) -> None:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        self._errors: tuple[type[Exception], ...] = (psycopg.Error,)
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,
            kwargs={"autocommit": True, "connect_timeout": int(timeout_s)},
            check=AsyncConnectionPool.check_connection,
            open=False,
        )
        self._timeout = timeout_s

    async def open(self) -> PostgresEventArchive:
        """Connect and create the table (ArchiveUnavailable when PostgreSQL cannot be
        reached)."""
        try:
            await self._pool.open(wait=True, timeout=self._timeout)
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(SCHEMA_LOCK)
                await conn.execute(SCHEMA)
        except Exception as exc:
            await self._pool.close()
            raise ArchiveUnavailable(
                f"cannot open the event archive in PostgreSQL: {exc}"
            ) from None
        return self

    async def append(self, event: StreamEvent) -> None:
        """Insert the event under its id (a repeat is ignored)."""
        if event.id is None:
            raise ValueError("only published events (with an id) are archived")
        ms, seq = parse_event_id(event.id)
        try:
            async with self._pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO stream_events (channel, ms, seq, event) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (event.channel, ms, seq, event.model_dump_json()),
                )
        except self._errors as exc:
            raise ArchiveUnavailable(f"cannot archive event {event.id}: {exc}") from None

    async def read(self, channel: Channel, after: str, upto: str | None) -> list[StreamEvent]:
        """Events in (``after``, ``upto``], oldest first."""
        low = parse_event_id(after)
        query = "SELECT event FROM stream_events WHERE channel = %s AND (ms, seq) > (%s, %s)"
        params: list[object] = [channel, *low]
        if upto is not None:
            query += " AND (ms, seq) <= (%s, %s)"
            params += list(parse_event_id(upto))
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query + " ORDER BY ms, seq", params)
                rows = await cursor.fetchall()
        except self._errors as exc:
            raise ArchiveUnavailable(f"cannot read the event archive: {exc}") from None
        return [StreamEvent.model_validate_json(row[0]) for row in rows]

    async def aclose(self) -> None:
        """Close the pool."""
        await self._pool.close()

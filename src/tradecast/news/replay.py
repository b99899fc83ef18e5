"""A replay of timestamped news items from a file the user brings (JSONL or CSV).

Each record has ``published_at`` (ISO-8601 with a zone, or seconds since the epoch),
``title``, and optionally ``summary``, ``source``, ``url``, ``symbols`` (a list, or ``BTC;ETH``
in a CSV), ``id`` and ``first_seen_at``. A record without a trustworthy publication time is
left out and counted, never guessed: a replay must not read an article before it existed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tradecast.domain.news import NewsItem
from tradecast.errors import NewsError
from tradecast.logs import get_logger
from tradecast.news.base import DropCount, PublishedIndex, news_item

log = get_logger(__name__)

MAX_FILE_BYTES = 512 * 1024 * 1024
"""A larger news file is refused (it is read whole)."""
MAX_LINE_CHARS = 100_000


class ReplayNewsSource:
    """Items read once from a file, served by publication time."""

    def __init__(self, items: list[NewsItem], name: str, dropped: DropCount) -> None:
        self._index = PublishedIndex(items)
        self._name = name
        self._dropped = dropped

    @classmethod
    def from_file(cls, path: Path) -> ReplayNewsSource:
        """Read ``path`` (``.jsonl``/``.ndjson`` or ``.csv``).

        Raises:
            NewsError: the file is missing, too large, of an unknown kind, or not JSONL/CSV.
        """
        text = _read(path)
        dropped = DropCount()
        rows = _csv_rows(text, path) if path.suffix.lower() == ".csv" else _jsonl_rows(text, path)
        items: list[NewsItem] = []
        ids: set[str] = set()
        for row in rows:
            item = _item(row, default_source=path.stem)
            if isinstance(item, str):
                dropped.add(item)
            elif item.id in ids:
                dropped.add("duplicate_id")
            else:
                ids.add(item.id)
                items.append(item)
        log.info("news.replay_loaded", file=str(path), items=len(items), **dropped.counts())
        return cls(items, f"replay:{path.name}", dropped)

    @property
    def name(self) -> str:
        return self._name

    def __len__(self) -> int:
        return len(self._index)

    async def items(self, since: datetime, until: datetime) -> list[NewsItem]:
        """The file's items published from ``since`` to ``until``, oldest first."""
        return self.between(since, until)

    def between(self, since: datetime, until: datetime) -> list[NewsItem]:
        """:meth:`items` without awaiting (the file is in memory)."""
        return self._index.between(since, until)

    def dropped(self) -> Mapping[str, int]:
        return self._dropped.counts()

    async def aclose(self) -> None:
        return None


def _read(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise NewsError(f"news file {path} must be .jsonl, .ndjson or .csv (got {suffix!r})")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise NewsError(
                f"news file {path} has {size:,} bytes; at most {MAX_FILE_BYTES:,} are read"
            )
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NewsError(f"news file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NewsError(f"news file {path} cannot be read as UTF-8 text: {exc}") from None


def _jsonl_rows(text: str, path: Path) -> Iterator[dict[str, Any] | str]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            yield "line_too_long"
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
            if number == 1:
                raise NewsError(f"news file {path} is not JSON lines: line 1: {exc}") from None
            yield "bad_json"
            continue
        yield row if isinstance(row, dict) else "not_an_object"


def _csv_rows(text: str, path: Path) -> Iterator[dict[str, Any] | str]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "published_at" not in reader.fieldnames:
        raise NewsError(
            f"news file {path} needs a header with published_at and title (got {reader.fieldnames})"
        )
    try:
        for row in reader:
            yield {k: v for k, v in row.items() if k is not None}
    except csv.Error as exc:  # a field past csv's size limit, a NUL byte: the rest is unsure
        raise NewsError(f"news file {path}: CSV line {reader.line_num}: {exc}") from None


def _item(row: dict[str, Any] | str, default_source: str) -> NewsItem | str:
    if isinstance(row, str):
        return row
    return news_item(
        published=row.get("published_at"),
        title=row.get("title"),
        source=row.get("source") or default_source,
        summary=row.get("summary") or "",
        url=row.get("url") or "",
        symbols=row.get("symbols") or (),
        identifier=row.get("id"),
        first_seen=row.get("first_seen_at"),
    )

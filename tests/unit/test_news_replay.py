"""The replay news source: what a user's file may hold, what is left out and counted, and the
clear errors for a file that cannot be used."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradecast.errors import NewsError
from tradecast.news.base import canonical_url, parse_published
from tradecast.news.replay import ReplayNewsSource

SAMPLE = Path(__file__).parents[1] / "fixtures" / "news" / "sample-2021-01.jsonl"


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_the_sample_file_loads_and_counts_what_it_cannot_trust():
    source = ReplayNewsSource.from_file(SAMPLE)
    assert len(source) == 32
    assert source.dropped() == {
        "no_timezone": 1,
        "no_timestamp": 1,
        "implausible_timestamp": 1,
        "no_title": 1,
    }
    assert source.name == "replay:sample-2021-01.jsonl"


async def test_items_are_served_by_publication_time_both_ends_included():
    source = ReplayNewsSource.from_file(SAMPLE)
    since = datetime(2021, 1, 4, 9, 5, tzinfo=UTC)
    until = datetime(2021, 1, 4, 16, 30, tzinfo=UTC)
    items = await source.items(since, until)
    assert [i.id for i in items] == ["sample-009", "sample-010", "sample-011"]
    assert all(since <= i.published_at <= until for i in items)
    assert items == sorted(items, key=lambda i: i.published_at)


def test_a_csv_file_with_the_same_columns_gives_the_same_items(tmp_path: Path):
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()][:32]
    path = tmp_path / "news.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, ["id", "published_at", "title", "summary", "source", "url", "symbols"]
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "symbols": ";".join(row["symbols"])})
    from_csv = ReplayNewsSource.from_file(path).between(
        datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 2, 1, tzinfo=UTC)
    )
    from_jsonl = ReplayNewsSource.from_file(SAMPLE).between(
        datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 2, 1, tzinfo=UTC)
    )
    assert from_csv == from_jsonl


def test_texts_are_cleaned_bounded_and_given_an_id(tmp_path: Path):
    long_summary = "<p>Bitcoin &amp; ether <b>rally</b></p> " + "x" * 5000
    path = _write_jsonl(
        tmp_path / "n.jsonl",
        [
            {"published_at": "2021-01-02T00:00:00+02:00", "title": "  A  <i>headline</i> ",
             "summary": long_summary, "url": "https://www.a.example/x/?utm_source=rss#top",
             "symbols": "btc, eth/usdt"},
            {"published_at": 1609459200, "title": "Epoch seconds are UTC", "source": "S"},
        ],
    )  # fmt: skip
    first, second = ReplayNewsSource.from_file(path).between(
        datetime(2020, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)
    )
    assert second.title == "A headline" and second.published_at == datetime(
        2021, 1, 1, 22, tzinfo=UTC
    )
    assert second.summary.startswith("Bitcoin & ether rally x") and len(second.summary) == 2000
    assert second.symbols == ("BTC", "ETH") and second.source == "n"
    assert second.id.startswith("news-")
    assert first.published_at == datetime(2021, 1, 1, tzinfo=UTC) and first.source == "S"


def test_a_repeated_id_keeps_the_first_and_counts_the_rest(tmp_path: Path):
    row = {"id": "same", "published_at": "2021-01-02T00:00:00Z", "title": "One"}
    path = _write_jsonl(tmp_path / "n.jsonl", [row, {**row, "title": "Two"}, "not an object"])
    source = ReplayNewsSource.from_file(path)
    assert len(source) == 1 and source.dropped() == {"duplicate_id": 1, "not_an_object": 1}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("news.txt", "x", "must be .jsonl, .ndjson or .csv"),
        ("news.jsonl", "{not json", "is not JSON lines"),
        ("news.csv", "when,headline\n", "needs a header with published_at"),
    ],
)
def test_an_unusable_file_is_a_clear_error(tmp_path: Path, name: str, content: str, message: str):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(NewsError, match=message):
        ReplayNewsSource.from_file(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(NewsError, match="does not exist"):
        ReplayNewsSource.from_file(tmp_path / "none.jsonl")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-01-01T00:00:00Z", datetime(2021, 1, 1, tzinfo=UTC)),
        ("2021-01-01T01:00:00+01:00", datetime(2021, 1, 1, tzinfo=UTC)),
        (1609459200, datetime(2021, 1, 1, tzinfo=UTC)),
        ("1609459200", datetime(2021, 1, 1, tzinfo=UTC)),
        ("2021-01-01T00:00:00", "no_timezone"),
        ("", "no_timestamp"),
        (None, "no_timestamp"),
        ("yesterday", "bad_timestamp"),
        (True, "bad_timestamp"),
        (1609459200000, "implausible_timestamp"),
        ("1999-12-31T23:59:59Z", "implausible_timestamp"),
    ],
)
def test_only_a_timestamp_with_a_zone_is_trusted(value: object, expected: object):
    assert parse_published(value) == expected


def test_canonical_urls_ignore_tracking_scheme_and_www():
    assert canonical_url("https://www.A.example/x/?utm_source=rss&id=3#frag") == canonical_url(
        "http://a.example/x?id=3&mtm_campaign=API"
    )
    assert canonical_url("https://a.example/x?id=3") != canonical_url("https://a.example/x?id=4")


def test_hostile_records_are_left_out_and_counted_never_a_crash(tmp_path: Path):
    good = {"published_at": "2021-01-02T00:00:00Z", "title": "Fine", "source": "S"}
    lines = [
        json.dumps({**good, "id": "bad-url", "url": "http://[::1"}),
        json.dumps({**good, "title": "Bad URL, no id", "url": "http://[::1/x"}),
        json.dumps({**good, "id": "edge", "published_at": "0001-01-01T00:00:00+14:00"}),
        '{"published_at": 1' + "0" * 5000 + "}",
        "[" * 40_000 + "]" * 40_000,  # nested past the parser's recursion limit
        "x" * 100_001,
        json.dumps({**good, "id": "surrogate", "title": "A\ud800B\x1b[31mC"}),
        json.dumps({**good, "id": "x" * 500, "title": "Long id"}),
        json.dumps({**good, "id": "seen", "first_seen_at": "2021-01-02T00:00:00"}),
    ]
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps(good) + "\n" + "\n".join(lines) + "\n")
    source = ReplayNewsSource.from_file(path)
    items = {
        i.id: i
        for i in source.between(datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC))
    }
    assert items["bad-url"].url == "http://[::1"
    assert any(i.title == "Bad URL, no id" for i in items.values())
    assert items["surrogate"].title == "A?B [31mC"
    assert len(next(i for i in items.values() if i.title == "Long id").id) == 200
    assert source.dropped() == {
        "implausible_timestamp": 1,
        "bad_json": 2,
        "line_too_long": 1,
        "first_seen_no_timezone": 1,
    }


def test_a_csv_field_past_the_csv_limit_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "n.csv"
    path.write_text("published_at,title\n2021-01-02T00:00:00Z," + "x" * 200_000 + "\n")
    with pytest.raises(NewsError, match="CSV line"):
        ReplayNewsSource.from_file(path)

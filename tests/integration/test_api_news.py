"""The API shows what news each decision read: the tick's report and the decisions routes
list the items (ids, titles, times, tone), all published before the decision."""

from __future__ import annotations

from pathlib import Path

from support.api import OPERATOR, VIEWER, api_settings, auth, running_app, scripted_models

NEWS = Path(__file__).parents[1] / "fixtures" / "news" / "sample-2021-01.jsonl"


async def test_a_decision_lists_the_news_it_read(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data")
    settings = settings.model_copy(update={"news": settings.news.model_copy(update={"file": NEWS})})
    models = scripted_models()
    async with running_app(settings, embedder, models) as (_, client):
        tick = await client.post("/v1/desk/tick", headers=auth(OPERATOR))
        assert tick.status_code == 200, tick.text
        decision = tick.json()["decision"]
        read = decision["news"]
        assert read, "the sample file has BTC news in the 48 h before 2021-01-05 12:00"
        assert all(item["published_at"] < "2021-01-05T12:00:00" for item in read)
        assert {"id", "title", "source", "url", "published_at", "relevance", "sentiment"} <= set(
            read[0]
        )
        assert read[0]["sentiment_method"] == "vader-3.3.2+market-words"
        shown = await client.get(f"/v1/decisions/{decision['id']}", headers=auth(VIEWER))
        assert shown.json()["decision"]["news"] == read
    analyst_prompt = "\n".join(str(m.content) for m in models["analyst"].prompts[0])
    assert read[0]["title"][:60] in analyst_prompt

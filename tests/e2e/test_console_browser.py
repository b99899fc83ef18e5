"""The operator console in a real headless Chromium (Debian's, driven by Playwright) against a
real `tradecast serve` with the embedded model: signing in as each role (and out, which ends
the session on the server), a tick drawn on the chart and explained agent by agent, an order
approved in the page and its fill in the explanation, a risk limit changed (with the
confirmation of a large loosening), the chat streaming its answer, forged requests refused
and a token renewed after the browser signed in elsewhere, a server restart with a tick missed
while the page was disconnected, no serious accessibility violation on any view (axe-core),
and the screenshots of docs/CONSOLE.md.

One server serves the whole module (the desk waits for approval on every order and never
ticks by itself: the tests tick it), so the tests run in file order and share its state; the
restart comes last.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.console import (
    ROLE_KEYS,
    VIEWPORT,
    ConsoleServer,
    console_server,
    screenshot,
    serious_violations,
    sign_in,
    wait_ready_page,
    wait_sign_in_form,
)
from support.overlay import CHROMIUM, CHROMIUM_ARGS

SETTINGS = {
    "TRADECAST_DESK__AUTOSTART": "false",  # only the tests tick
    "TRADECAST_DESK__SECONDS_PER_TICK": "3600",
    "TRADECAST_DESK__REQUIRE_APPROVAL": "true",
    # about 1,100 hourly bars on the chart before the first tick (the data starts 2020-06-09);
    # the trend and DCA agents buy on the first ticks from here
    "TRADECAST_DESK__REPLAY_FROM": "2020-07-26T00:00:00Z",
}
MAX_TICKS_FOR_AN_APPROVAL = 6
STATE = "window.tradecastConsole.state"


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    with console_server(tmp_path_factory.mktemp("console"), SETTINGS) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Tab:
    """A browser context (its own cookies) with one page, and the page's uncaught errors."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def state(self) -> dict[str, Any]:
        found: dict[str, Any] = self.page.evaluate(STATE)
        return found

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(browser: Any) -> Iterator[list[Tab]]:
    """Tabs a test opens (closed after it)."""
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        tab.close()


def open_tab(browser: Any, tabs: list[Tab]) -> Tab:
    tab = Tab(browser)
    tabs.append(tab)
    return tab


def assert_accessible(page: Any, view: str) -> None:
    violations = serious_violations(page)
    assert not violations, f"{view}: {violations}"


def visible_ids(page: Any, selector: str) -> set[str]:
    found: list[str] = page.eval_on_selector_all(
        selector, "els => els.filter(e => e.offsetParent !== null).map(e => e.id || e.textContent)"
    )
    return set(found)


def wait_until_settled(page: Any, desk: ConsoleServer, decision_id: str) -> None:
    """The page has caught up with a finished tick from the streams alone: the desk's status
    (not ticking, the tick counted) and the decision's marker with its stored outcome."""
    with desk.client("viewer") as api:
        ticks = api.get("/v1/desk/status").json()["ticks"]
        marks = api.get("/v1/decisions/markers", params={"limit": 50}).json()["items"]
    outcome = next(m["outcome"] for m in marks if m["id"] == decision_id)
    page.wait_for_function(
        f"([ticks, id, outcome]) => !{STATE}.ticking && {STATE}.ticks === ticks"
        " && window.tradecastConsole.markerOutcome(id) === outcome",
        arg=[ticks, decision_id, outcome],
        timeout=30_000,
    )


def approve_everything_waiting(desk: ConsoleServer) -> None:
    with desk.client("operator") as api:
        for decision_id in api.get("/v1/desk/status").json()["pending_approvals"]:
            assert api.post(f"/v1/approvals/{decision_id}", json={"approved": True}).is_success


@pytest.mark.slow
def test_each_role_signs_in_and_sees_only_what_it_may_use(
    desk: ConsoleServer, browser: Any, tabs: list[Tab]
):
    for role in ("viewer", "operator", "admin"):
        tab = open_tab(browser, tabs)
        page = tab.page
        page.goto(f"{desk.base}/console/")
        wait_sign_in_form(page)
        if role == "viewer":
            # a submit cannot put the key in a URL: POST, and the input has no name
            assert page.get_attribute("#signin-form", "method") == "post"
            assert page.get_attribute("#api-key", "name") is None
            assert_accessible(page, "sign-in")
            screenshot(page, "signin")
            page.fill("#api-key", "not-a-configured-key")
            page.press("#api-key", "Enter")
            page.wait_for_function("document.getElementById('signin-error').textContent !== ''")
            assert page.text_content("#signin-error") == "That key is not valid."
        page.fill("#api-key", ROLE_KEYS[role])
        page.press("#api-key", "Enter")
        wait_ready_page(page)
        state = tab.state()
        assert state["role"] == role and page.text_content("#who-role") == role
        assert state["candles"] > 1000
        # the key went into a cookie the page cannot read, and nowhere else
        cookie = next(c for c in tab.context.cookies() if c["name"] == "tradecast_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert ROLE_KEYS[role] not in cookie["value"] and ROLE_KEYS[role] not in page.url
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
        assert page.input_value("#api-key") == ""

        tabs_shown = visible_ids(page, '[role="tab"]')
        if role == "viewer":
            assert tabs_shown == {"tab-market", "tab-tick", "tab-book"}
            assert not page.is_visible("#chat")
            # nothing that changes the desk is on the page for a viewer, whatever the view
            for view in ("market", "tick", "book"):
                page.click(f"#tab-{view}")
                assert visible_ids(page, "#app button:not([role=tab]), #app input") <= {
                    "follow-latest"
                }, view
            # keyboard: arrows, Home and End move between the tabs and show them
            page.focus("#tab-market")
            page.keyboard.press("ArrowRight")
            assert page.get_attribute("#tab-tick", "aria-selected") == "true"
            assert page.evaluate("document.activeElement.id") == "tab-tick"
            assert page.is_visible("#view-tick") and not page.is_visible("#view-market")
            page.keyboard.press("End")
            assert page.evaluate("document.activeElement.id") == "tab-book"
            page.keyboard.press("Home")
            assert page.get_attribute("#tab-market", "aria-selected") == "true"
        else:
            assert tabs_shown == {"tab-market", "tab-tick", "tab-book", "tab-control"}
            assert page.is_visible("#chat")
            page.click("#tab-control")
            page.wait_for_selector("#limit-max_position_pct")
            assert page.is_visible("#desk-tick") and page.is_visible("#desk-start")
            limits_editable = page.is_enabled("#limit-max_position_pct")
            assert limits_editable == (role == "admin")
            assert page.is_visible("#limits-save") == (role == "admin")
            assert page.is_visible("#kill-switch") == (role == "admin")
        assert tab.errors == [] and tab.state()["errors"] == []

    # sign out: the session ends on the server too (the cookie the browser held is refused, not
    # merely cleared from the browser)
    page = tabs[-1].page
    held = next(c["value"] for c in tabs[-1].context.cookies() if c["name"] == "tradecast_session")
    with httpx.Client(base_url=desk.base, cookies={"tradecast_session": held}) as client:
        assert client.get("/v1/session").status_code == 200
    page.click("#sign-out")
    page.wait_for_selector("#api-key", state="visible")
    assert not any(c["name"] == "tradecast_session" for c in tabs[-1].context.cookies())
    with httpx.Client(base_url=desk.base, cookies={"tradecast_session": held}) as client:
        answer = client.get("/v1/session")
    assert answer.status_code == 401, answer.text


@pytest.mark.slow
def test_forged_requests_are_refused(desk: ConsoleServer, browser: Any, tabs: list[Tab]):
    operator = open_tab(browser, tabs)
    sign_in(operator.page, desk.base, "operator")
    request = operator.context.request  # the browser's cookie, none of the page's script
    stop = f"{desk.base}/v1/desk/stop"
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
        answer = request.post(stop, headers=headers)
        assert answer.status == 403, answer.text()
        assert answer.json()["error"]["code"] == "csrf_failed"
    token = request.get(f"{desk.base}/v1/session").json()["csrf_token"]
    assert request.post(stop, headers={"X-CSRF-Token": token}).status == 200  # the real page

    # the browser signs in elsewhere (another tab, another key): the cookie, and with it the
    # token and the role, change under the page. Its next change is refused (csrf_failed); the
    # page reads the session again and sends it once more, as the role it now has.
    page = operator.page
    page.click("#tab-control")
    page.wait_for_selector("#desk-stop")
    signed = request.post(f"{desk.base}/v1/session", data={"key": ROLE_KEYS["admin"]})
    assert signed.status == 200 and signed.json()["csrf_token"] != token
    page.click("#desk-stop")
    page.wait_for_selector('#control-message[data-state="ok"]')
    assert page.text_content("#control-message") == "The desk is stopped."
    assert operator.state()["role"] == "admin" and page.text_content("#who-role") == "admin"
    page.wait_for_selector("#kill-switch", state="visible")
    assert operator.errors == [] and operator.state()["errors"] == []

    viewer = open_tab(browser, tabs)
    sign_in(viewer.page, desk.base, "viewer")
    token = viewer.context.request.get(f"{desk.base}/v1/session").json()["csrf_token"]
    answer = viewer.context.request.post(stop, headers={"X-CSRF-Token": token})
    assert answer.status == 403 and answer.json()["error"]["code"] == "forbidden"


@pytest.mark.slow
def test_a_tick_is_drawn_on_the_chart_and_explained_agent_by_agent(
    desk: ConsoleServer, browser: Any, tabs: list[Tab]
):
    tab = open_tab(browser, tabs)
    page = tab.page
    sign_in(page, desk.base, "operator")
    # the first paint of a page whose session is open (nobody typing a key in between)
    page.reload()
    wait_ready_page(page)
    state = tab.state()
    # recorded only: the time is measured (and bounded) by bench/console_first_paint.py
    assert state["firstChartPaintMs"] > 0, state["firstChartPaintMs"]

    with desk.client("operator") as api:
        report = api.post("/v1/desk/tick").json()  # waits for the tick's report
    decision = report["decision"]
    agents = sorted(a["agent"] for a in decision["attribution"])
    assert len(agents) >= 8
    page.wait_for_function("id => window.tradecastConsole.hasMarker(id)", arg=decision["id"])

    page.click("#tab-tick")
    card = f'#explain article.explain[data-decision-id="{decision["id"]}"]'
    page.wait_for_selector(card)
    shown = page.eval_on_selector_all(f"{card} .agent", "els => els.map(e => e.dataset.agent)")
    assert sorted(shown) == agents
    for row in decision["attribution"]:
        text = page.text_content(f'{card} .agent[data-agent="{row["agent"]}"]')
        shown_pct = re.search(r"confidence(\d+)%", text)
        assert shown_pct and abs(int(shown_pct[1]) - row["confidence"] * 100) <= 0.5, text
        assert (row["action"] in text) or row["abstained"], text
    # the whole report once it is stored: the gate's verdict, the LLM calls, the latency (and
    # final unless the order waits for a human)
    page.wait_for_selector(f'{card}[data-stored="true"]', timeout=30_000)
    wait_until_settled(page, desk, decision["id"])
    waiting = report["status"] == "awaiting_approval"
    assert page.get_attribute(card, "data-complete") == str(not waiting).lower()
    # on the chart: first as "deciding" (heard on the stream before its report was stored,
    # not yet a filled arrow), then as what came of it
    first = tab.state()["lastProvisional"]
    assert first["id"] == decision["id"], first
    drawn = page.evaluate("id => window.tradecastConsole.markerOf(id)", decision["id"])
    if decision["action"] != "HOLD":
        assert first["marker"]["shape"] == "circle", first
        assert first["marker"]["text"] == f"{decision['action']}\u2026", first
        assert drawn["text"] != first["marker"]["text"], drawn
    text = page.text_content(card)
    assert "Verdict:" in text and f"{report['llm']['calls']} calls" in text
    assert all(node in text for node in report["latency_ms"])
    assert page.eval_on_selector(card, "e => e.dataset.outcome") in (
        "hold",
        "filled",
        "rejected",
        "waiting",
        "unfilled",
    )
    assert tab.state()["selectedDecision"] == decision["id"]
    assert_accessible(page, "tick")
    screenshot(page, "tick", full_page=True)

    page.click("#tab-market")
    assert_accessible(page, "market")
    assert tab.errors == [] and tab.state()["errors"] == []


@pytest.mark.slow
def test_an_operator_approves_a_waiting_order_and_sees_its_fill(
    desk: ConsoleServer, browser: Any, tabs: list[Tab]
):
    tab = open_tab(browser, tabs)
    page = tab.page
    sign_in(page, desk.base, "operator")
    page.click("#tab-control")
    page.wait_for_selector("#approvals[data-count]")
    with desk.client("operator") as api:
        for _ in range(MAX_TICKS_FOR_AN_APPROVAL):
            pending = api.get("/v1/desk/status").json()["pending_approvals"]
            if pending:
                break
            assert api.post("/v1/desk/tick").is_success
        else:
            pending = api.get("/v1/desk/status").json()["pending_approvals"]
    assert pending, f"no order waited for approval after {MAX_TICKS_FOR_AN_APPROVAL} ticks"
    decision_id = pending[0]

    # the page hears of it on the stream: no reload, no polling
    item = f'#approvals li.approval[data-decision-id="{decision_id}"]'
    page.wait_for_selector(item, timeout=60_000)
    page.wait_for_selector(f'{item} article.explain[data-decision-id="{decision_id}"] .agent')
    assert_accessible(page, "control")
    screenshot(page, "control", full_page=True)

    # the decision explained while it waits: not final yet
    page.click("#tab-tick")
    page.wait_for_selector(f'#decision-select option[value="{decision_id}"]', state="attached")
    page.select_option("#decision-select", decision_id)
    card = f'#explain article.explain[data-decision-id="{decision_id}"]'
    page.wait_for_selector(f'{card}[data-outcome="waiting"]')
    assert page.get_attribute(card, "data-complete") == "false"
    assert not page.is_checked("#follow-latest")
    page.click("#tab-control")

    page.click(f'{item} button:has-text("Approve")')
    page.wait_for_function(
        f"id => {{ const a = {STATE}.lastApproval; return a && a.decisionId === id; }}",
        arg=decision_id,
        timeout=180_000,
    )
    approval = tab.state()["lastApproval"]
    assert approval["fills"] > 0, page.text_content("#approvals-message")
    assert page.text_content("#approvals-message").startswith("Approved: filled")
    page.wait_for_selector(item, state="detached")

    # the explanation reloads once the answer is stored: the order and its fill
    page.click("#tab-tick")
    page.wait_for_selector(f'{card}[data-complete="true"]', timeout=30_000)
    assert page.get_attribute(card, "data-outcome") == "filled"
    shown = page.eval_on_selector(
        card,
        """card => {
            const part = [...card.querySelectorAll("section.explain-part")]
                .find((s) => s.querySelector("h4").textContent === "Order and fills");
            return {text: part.textContent, fills: part.querySelectorAll("li").length};
        }""",
    )
    assert shown["fills"] == approval["fills"], shown
    assert "filled" in shown["text"] and "@" in shown["text"], shown

    # the fill reaches the chart and the book
    page.wait_for_function(f"() => {STATE}.fillMarkers > 0")
    page.click("#tab-book")
    page.wait_for_function("() => Number(document.getElementById('book').dataset.fills) > 0")
    first_fill = page.text_content("#fills-table tbody tr")
    assert "buy" in first_fill.lower()
    assert "No open position" not in page.text_content("#positions-table")
    assert_accessible(page, "book")
    assert tab.errors == [] and tab.state()["errors"] == []


def journal_rows(page: Any, action: str) -> dict[int, str]:
    """The page's control journal rows of ``action``: seq -> outcome."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "#journal-table tbody tr:not(.empty)",
        "rows => rows.map((r) => [...r.cells].map((c) => c.textContent))",
    )
    return {int(r[0]): r[5] for r in rows if r[3] == action}


def set_limit(page: Any, value: Decimal) -> None:
    """Type ``value`` as the max position and save (the message is cleared first, so a wait
    for the next one does not see the previous)."""
    page.evaluate("document.getElementById('limits-message').dataset.state = ''")
    page.fill("#limit-max_position_pct", str(value))
    page.click("#limits-save")


@pytest.mark.slow
def test_an_admin_changes_a_risk_limit_and_confirms_a_large_loosening(
    desk: ConsoleServer, browser: Any, tabs: list[Tab]
):
    tab = open_tab(browser, tabs)
    page = tab.page
    sign_in(page, desk.base, "admin")
    page.click("#tab-control")
    page.wait_for_selector("#limit-max_position_pct:enabled")
    page.wait_for_selector("#journal-table tbody tr")
    before = journal_rows(page, "set_limits")
    with desk.client("admin") as api:

        def limit() -> Decimal:
            return Decimal(api.get("/v1/risk/limits").json()["max_position_pct"])

        def journaled() -> dict[int, str]:
            items = api.get("/v1/desk/journal", params={"limit": 200}).json()["items"]
            return {j["seq"]: j["outcome"] for j in items if j["action"] == "set_limits"}

        journaled_before = journaled()
        assert set(before) <= set(journaled_before)
        start = limit()
        tighter = start * Decimal("0.8")
        set_limit(page, tighter)
        page.wait_for_selector('#limits-message[data-state="saved"]')
        assert "max_position_pct" in page.text_content("#limits-message")
        assert limit() == tighter

        # more than 2x looser: nothing applies before the admin confirms
        looser = tighter * 5
        set_limit(page, looser)
        page.wait_for_selector("#confirm-dialog[open]")
        assert "2x" in page.text_content("#confirm-text")
        assert page.evaluate("document.activeElement.id") == "confirm-cancel"  # the safe answer
        assert_accessible(page, "confirmation dialog")
        page.click("#confirm-cancel")
        page.wait_for_selector("#confirm-dialog:not([open])", state="attached")
        assert page.text_content("#limits-message").startswith("Not applied")
        assert limit() == tighter

        set_limit(page, looser)
        page.wait_for_selector("#confirm-dialog[open]")
        screenshot(page, "limits-confirm")
        page.click("#confirm-apply")
        page.wait_for_selector('#limits-message[data-state="saved"]')
        assert page.text_content("#limits-message").startswith("Saved (confirmed)")
        assert limit() == looser
        assert Decimal(page.input_value("#limit-max_position_pct")) == looser

        set_limit(page, start)  # back to where it was (tighter: no confirmation)
        page.wait_for_selector('#limits-message[data-state="saved"]')
        assert limit() == start
        # journaled: the three changes applied and the two held for a confirmation
        added = {seq: out for seq, out in journaled().items() if seq not in journaled_before}
    assert sorted(added.values()) == sorted(["ok"] * 3 + ["awaiting confirmation"] * 2), added
    # and the page's journal shows exactly those new rows, from the stream alone
    page.wait_for_function(
        """([before, count]) => {
            const rows = [...document.querySelectorAll('#journal-table tbody tr:not(.empty)')]
                .map((r) => [...r.cells].map((c) => c.textContent));
            const fresh = rows.filter((r) => r[3] === 'set_limits')
                .filter((r) => !before.includes(Number(r[0])));
            return fresh.length === count;
        }""",
        arg=[list(before), len(added)],
        timeout=30_000,
    )
    after = journal_rows(page, "set_limits")
    assert {seq: out for seq, out in after.items() if seq not in before} == added
    if len(page.query_selector_all("#journal-table tbody tr")) < 50:  # nothing scrolled out
        assert len(after) == len(before) + len(added), (before, after)

    # a change made elsewhere (the API, another admin, the chat) shows at once, from the
    # stream, but a field being edited keeps what was typed
    with desk.client("admin") as api:
        limits = api.get("/v1/risk/limits").json()
        page.fill("#limit-max_order_notional", "1234")
        for count in (limits["max_open_positions"] + 1, limits["max_open_positions"]):
            assert api.put("/v1/risk/limits", json={"max_open_positions": count}).is_success
            page.wait_for_function(
                "n => document.getElementById('limit-max_open_positions').value === String(n)",
                arg=count,
            )
            assert page.input_value("#limit-max_order_notional") == "1234"
        # the kill switch turned on elsewhere: the button shows it, and turns it off
        assert api.post("/v1/risk/kill-switch", json={"on": True}).is_success
        page.wait_for_selector('#kill-switch[aria-pressed="true"]')
        page.click("#kill-switch")
        page.wait_for_selector('#kill-switch[aria-pressed="false"]')
        assert api.get("/v1/risk/limits").json()["kill_switch"] is False
    assert tab.errors == [] and tab.state()["errors"] == []


@pytest.mark.slow
def test_an_operator_chats_with_the_desk(desk: ConsoleServer, browser: Any, tabs: list[Tab]):
    tab = open_tab(browser, tabs)
    page = tab.page
    sign_in(page, desk.base, "operator")
    page.fill("#chat-input", "status")
    page.press("#chat-input", "Enter")
    page.wait_for_selector(".chat-desk[data-command]", timeout=120_000)
    answer = page.locator(".chat-desk").last
    assert answer.get_attribute("data-command") == "status"
    assert answer.get_attribute("data-applied") == "true"
    assert answer.locator(".chat-text").text_content().strip()
    # a question: the persona's answer streams in
    page.fill("#chat-input", "What did the desk do last?")
    page.press("#chat-input", "Enter")
    page.wait_for_function(
        "document.querySelectorAll('.chat-desk[data-command]').length === 2", timeout=180_000
    )
    answer = page.locator(".chat-desk").last
    assert answer.get_attribute("data-command") == "ask"
    assert answer.locator(".chat-text").text_content().strip()
    # it streamed: the page showed part of the answer before the reply came
    chat = tab.state()["lastChat"]
    assert chat["replied"] and chat["command"] == "ask", chat
    assert chat["partials"] >= 1, chat
    assert_accessible(page, "chat")
    screenshot(page, "chat")
    assert tab.errors == [] and tab.state()["errors"] == []


@pytest.mark.slow
def test_a_failed_load_says_so_and_can_be_retried(
    desk: ConsoleServer, browser: Any, tabs: list[Tab]
):
    tab = open_tab(browser, tabs)
    page = tab.page
    sign_in(page, desk.base, "viewer")
    failing = "**/v1/portfolio/history"
    page.route(
        failing,
        lambda route: route.fulfill(
            status=500,
            content_type="application/json",
            body='{"error": {"code": "internal", "message": "the store is down"}}',
        ),
    )
    page.click("#tab-book")
    page.wait_for_selector("#load-error", state="visible")
    assert page.get_attribute("#load-error", "role") == "alert"
    assert "the book" in page.text_content("#load-error-text")
    assert "the store is down" in page.text_content("#load-error-text")
    assert tab.state()["loadErrors"] == ["book"]
    assert_accessible(page, "error banner")

    page.unroute(failing)
    page.click("#load-retry")
    page.wait_for_selector("#load-error", state="hidden")
    assert page.text_content("#equity-summary")
    assert tab.state()["loadErrors"] == [] and tab.errors == []


@pytest.mark.slow
def test_the_page_survives_a_server_restart(desk: ConsoleServer, browser: Any, tabs: list[Tab]):
    """The server stops and starts again, and the desk ticks while the page cannot hear it:
    once its stream is back, the page reloads what it shows and has that tick, without a page
    reload."""
    approve_everything_waiting(desk)  # so the next tick decides a new bar
    tab = open_tab(browser, tabs)
    page = tab.page
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/v1/streams/" in r.url else None)
    sign_in(page, desk.base, "operator")
    page.click("#tab-tick")
    page.evaluate("window.sameDocument = true")
    reconnects = tab.state()["reconnects"]
    # one stream per tab, the desk's: a browser has 6 connections per host for all its tabs
    assert streams == [f"{desk.base}/v1/streams/desk"], streams

    # the stream cannot come back until the tick is done (the server is up long before)
    page.route("**/v1/streams/**", lambda route: route.abort())
    desk.stop()
    page.wait_for_function(f"{STATE}.connection === 'offline'", timeout=30_000)
    assert page.get_attribute("#connection", "data-state") == "offline"
    desk.start()
    with desk.client("operator") as api:
        decision = api.post("/v1/desk/tick").json()["decision"]
    assert tab.state()["connection"] == "offline"
    assert not page.evaluate("id => window.tradecastConsole.hasMarker(id)", decision["id"])

    page.unroute("**/v1/streams/**")
    page.wait_for_function(f"{STATE}.connection === 'live'", timeout=120_000)
    assert tab.state()["reconnects"] > reconnects
    page.wait_for_function(
        "id => window.tradecastConsole.hasMarker(id)", arg=decision["id"], timeout=30_000
    )
    card = f'#explain article.explain[data-decision-id="{decision["id"]}"]'
    page.wait_for_selector(f'{card}[data-stored="true"]', timeout=30_000)
    wait_until_settled(page, desk, decision["id"])
    assert page.evaluate("window.sameDocument") is True, "the page was not reloaded"
    assert tab.errors == []

    # the documentation's market and book, with every tick of this module on them
    page.click("#tab-market")
    screenshot(page, "market")
    page.click("#tab-book")
    page.wait_for_function("() => Number(document.getElementById('book').dataset.fills) > 0")
    screenshot(page, "book")


def test_screenshots_are_where_the_documentation_looks() -> None:
    """docs/CONSOLE.md shows the pictures the browser tests take."""
    doc = (Path(__file__).parents[2] / "docs" / "CONSOLE.md").read_text()
    for name in ("signin", "market", "tick", "book", "control", "chat"):
        assert f"console/{name}.png" in doc

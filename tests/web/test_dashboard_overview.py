"""The overview: counts and states as `monthlydocs status` computes them, filters, search,
sorting, pages, the JSON the script swaps in, and the live feed of new events."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from monthlydocs import checklists, clients, overview, portal, review, templates
from monthlydocs.storage import Incoming

from .conftest import NOW, PDF
from .dashboard_kit import staff_fixture, text_of  # noqa: F401 (fixture)

TODAY = date(2026, 12, 5)
NAMES = ["Müller GmbH", "Élodie Fabre", "Zeta Corp", "alpha sarl", "Bäckerei Öz",
         "Dupont & Fils", "Garage 100%"]


def _upload(db, settings, checklist, item_id, name="scan.pdf", data=PDF):
    incoming = Incoming(settings.files_dir, 10**6, name)
    incoming.write(data)
    return portal.upload(db, settings, checklist, item_id, incoming, NOW)


@pytest.fixture
def firm(case):
    """The portal kit's client plus seven more, in every state the overview knows."""
    db = case.db()
    settings = case.settings
    template = templates.get_template(db, "monthly")
    ids = [case.client_id]
    for n, name in enumerate(NAMES):
        ids.append(clients.add_client(
            db, clients.ClientInput(name, f"c{n}@firm{n}.example", language="de"),
            NOW, region="FR"))
    clients.assign(db, ids, template["id"], NOW)
    checklists.generate(db, [checklists.Request(template)], NOW, NOW.date(),
                        send=False)
    # A second template in another period, for the filters.
    templates.save_template(db, "vat", NOW, name="VAT return", cadence="quarterly")
    templates.save_slot(db, "vat", "Sales ledger")
    vat = templates.get_template(db, "vat")
    clients.assign(db, ids[:3], vat["id"], NOW)
    checklists.generate(db, [checklists.Request(vat, "2026-Q4", date(2026, 12, 20))],
                        NOW, NOW.date(), send=False)

    by_client = {row["client_id"]: row for row in db.query(
        "SELECT * FROM checklists WHERE template_id = ?", [template["id"]])}
    items = {cid: checklists.items(db, by_client[cid]["id"]) for cid in ids}
    # Müller: complete (two files); Élodie: partial; Zeta: opened; alpha: overdue;
    # Bäckerei: to call.
    for item in items[ids[1]][:2]:
        _upload(db, settings, by_client[ids[1]], item["id"])
    _upload(db, settings, by_client[ids[2]], items[ids[2]][0]["id"])
    portal.open_checklist(db, by_client[ids[3]]["token"], NOW, 30)
    # Set-up shortcuts for what would take weeks of reminders and calendar:
    db.execute("UPDATE checklists SET due_on = ? WHERE id = ?",
               [(TODAY - timedelta(days=1)).isoformat(), by_client[ids[4]]["id"]])
    db.execute("UPDATE checklists SET link_sent_at = ?, escalated_at = ? WHERE id = ?",
               ["2026-11-25T09:00:00Z", "2026-12-02T09:00:00Z",
                by_client[ids[5]]["id"]])
    db.close()
    return {"ids": ids, "checklists": by_client, "vat": vat["id"],
            "monthly": template["id"]}


def _overview(case, **query):
    db = case.db()
    try:
        return overview.overview(db, case.settings, TODAY, overview.Query(**query))
    finally:
        db.close()


def test_counts_and_states_are_those_of_monthlydocs_status(case, firm):
    db = case.db()
    expected, rows = checklists.status(db, TODAY, period="2026-12")
    db.close()
    view = _overview(case, period="2026-12")
    assert {s: view.counts[s] for s in overview.STATES} == expected
    assert view.counts == {"complete": 1, "partial": 1, "opened": 1, "not_opened": 4,
                           "overdue": 1, "to_call": 1, "total": 8}
    states = {row["id"]: row["state"] for row in rows}
    assert {row["id"]: row["state"] for row in view.rows} == states
    # Default order: to call first, then overdue, not opened, opened, partial, done.
    order = [(row["to_call"], row["state"]) for row in view.rows]
    assert order[0] == (True, "not_opened") and order[1] == (False, "overdue")
    assert order[-1] == (False, "complete") and order[-2] == (False, "partial")


def test_each_row_has_progress_activity_and_reminders(case, firm):
    view = _overview(case, period="2026-12", sort="client")
    row = next(r for r in view.rows if r["client"] == "Müller GmbH")
    assert (row["received"], row["required"], row["item_count"]) == (2, 2, 3)
    assert row["activity_at"] == "2026-12-01T09:00:00Z"
    called = next(r for r in view.rows if r["client"] == "Bäckerei Öz")
    assert called["to_call"] and called["next_reminder_on"] == date(2026, 11, 28)


def test_a_paused_client_has_no_next_reminder(staff, case, firm):
    db = case.db()
    clients.set_paused(db, firm["ids"][5], True, NOW)
    db.close()
    view = _overview(case, period="2026-12", sort="client")
    paused = next(r for r in view.rows if r["client"] == "Bäckerei Öz")
    assert paused["paused"] and paused["next_reminder_on"] is None
    assert not next(r for r in view.rows if r["client"] == "Zeta Corp")["paused"]
    assert "Paused" in text_of(staff.get("/dashboard/?period=2026-12"))


def test_filters_by_state_template_and_period(case, firm):
    assert [r["client"] for r in _overview(case, state="partial").rows] == [
        "Élodie Fabre"]
    assert [r["client"] for r in _overview(case, state="to_call").rows] == [
        "Bäckerei Öz"]
    assert [r["client"] for r in _overview(case, state="opened").rows] == ["Zeta Corp"]
    vat = _overview(case, template_id=firm["vat"])
    assert vat.matching == 3 and {r["period"] for r in vat.rows} == {"2026-Q4"}
    everything = _overview(case)
    assert everything.counts["total"] == 11 and everything.matching == 11


@pytest.mark.parametrize(("search", "found"), [
    ("muller", ["Müller GmbH"]),          # accents ignored
    ("ÉLODIE", ["Élodie Fabre"]),         # case too
    ("backerei oz", ["Bäckerei Öz"]),
    ("ALPHA", ["alpha sarl"]),
    ("100%", ["Garage 100%"]),            # LIKE wildcards are literal
    ("c2@firm2", ["Zeta Corp"]),          # the email address
    ("_", []),
])
def test_search_by_client(case, firm, search, found):
    view = _overview(case, period="2026-12", search=search)
    assert [r["client"] for r in view.rows] == found
    assert view.matching == len(found)


def test_sorting_both_ways_and_pages(case, firm):
    names = sorted(["Boulangerie Dupont", *NAMES], key=str.casefold)
    first = _overview(case, period="2026-12", sort="client", per_page=3)
    assert [r["client"] for r in first.rows] == names[:3]
    assert (first.matching, first.pages) == (8, 3)
    last = _overview(case, period="2026-12", sort="client", per_page=3, page=3)
    assert [r["client"] for r in last.rows] == names[6:]
    beyond = _overview(case, period="2026-12", sort="client", per_page=3, page=99)
    assert beyond.page == 3 and [r["client"] for r in beyond.rows] == names[6:]
    backwards = _overview(case, period="2026-12", sort="client", descending=True)
    assert [r["client"] for r in backwards.rows] == names[::-1]
    by_due = _overview(case, period="2026-12", sort="due")
    assert by_due.rows[0]["due_on"] == "2026-12-04"


def test_unknown_state_or_sort_is_refused(case):
    with pytest.raises(overview.MonthlydocsError):
        overview.Query(state="lost")
    with pytest.raises(overview.MonthlydocsError):
        overview.Query(sort="id; DROP TABLE clients")


def test_the_page_shows_counts_filters_and_the_table(staff, case, firm):
    page = text_of(staff.get("/dashboard/"))
    assert "December 2026" in page  # the latest period is the default
    assert 'class="number">8</span> <span class="label">All' in page
    assert 'href="/dashboard/?period=2026-12&amp;state=to_call"' in page
    assert f'href="/dashboard/checklists/{firm["checklists"][firm["ids"][1]]["id"]}"' \
        in page
    assert "2 of 2" in page and "Partial" in page and "To call" in page

    filtered = text_of(staff.get("/dashboard/?period=all&state=partial&q=elodie"))
    assert "Élodie Fabre" in filtered and "Müller" not in filtered
    assert "1 checklist" in filtered

    sorted_page = text_of(staff.get("/dashboard/?period=2026-12&sort=client&dir=desc"))
    assert sorted_page.index("Zeta Corp") < sorted_page.index("alpha sarl")
    assert 'aria-sort="descending"' in sorted_page


def test_unknown_arguments_fall_back_to_the_defaults(staff, case, firm):
    page = staff.get("/dashboard/?state=lost&sort=evil&page=x&template=abc")
    assert page.status_code == 200
    assert "8 checklists" in text_of(page)


def test_pages_of_the_table(staff, case, firm):
    db = case.db()
    template = templates.get_template(db, "monthly")
    many = [clients.add_client(db, clients.ClientInput(f"Client {n:03d}",
                                                       f"p{n}@x.example"),
                               NOW, region="FR") for n in range(60)]
    clients.assign(db, many, template["id"], NOW)
    checklists.generate(db, [checklists.Request(template)], NOW, NOW.date(), send=False)
    db.close()
    first = text_of(staff.get("/dashboard/?sort=client"))
    assert "68 checklists · page 1 of 2" in first
    assert 'href="/dashboard/?period=2026-12&amp;sort=client&amp;page=2"' in first
    second = text_of(staff.get("/dashboard/?sort=client&page=2"))
    assert "Client 059" not in first and "Client 059" in second
    assert 'aria-current="page">2</span>' in second


def test_the_script_gets_counts_and_table_as_json(staff, case, firm):
    answer = staff.get("/dashboard/?period=2026-12",
                       headers={"X-Requested-With": "XMLHttpRequest"})
    data = answer.get_json()
    assert data["ok"] is True
    assert data["counts"].startswith('<section id="counts"')
    assert data["table"].startswith('<section id="table"')
    assert "Müller GmbH" in data["table"]


def test_live_feed_announces_a_clients_upload(staff, case, portal):
    start = staff.get("/dashboard/live?after=0").get_json()
    assert start["ok"] and start["notices"] == [] and start["latest"] > 0
    latest = start["latest"]

    assert staff.get(f"/dashboard/live?after={latest}").get_json() == {
        "ok": True, "latest": latest, "changed": False, "notices": []}

    portal.upload(case.item_ids[0], ("relevé décembre.pdf", PDF))
    news = staff.get(f"/dashboard/live?after={latest}").get_json()
    assert news["changed"] and news["latest"] > latest
    texts = [n["text"] for n in news["notices"]]
    assert "New upload from Boulangerie Dupont: relevé décembre.pdf" in texts
    assert news["notices"][0]["url"] == f"/dashboard/checklists/{case.checklist_id}"

    # The staff's own review changes the table but makes no notice.
    document = case.documents()[0]
    db = case.db()
    review.approve(db, document["id"], "anne@martin.example", NOW)
    db.close()
    after = staff.get(f"/dashboard/live?after={news['latest']}").get_json()
    assert after["changed"] and after["notices"] == []


def test_live_notices_are_in_the_staff_language(staff, case, portal):
    latest = staff.get("/dashboard/live").get_json()["latest"]
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    news = staff.get(f"/dashboard/live?after={latest}",
                     headers={"Accept-Language": "es"}).get_json()
    assert news["notices"][0]["text"] == "Nuevo envío de Boulangerie Dupont: a.pdf"


def test_feed_core_names_the_checklist_of_each_event(case, firm):
    db = case.db()
    entries = overview.feed(db, 0, limit=500)
    db.close()
    uploads = [e for e in entries if e["action"] == "document:uploaded"]
    assert len(uploads) == 3 and all(e["file"] == "scan.pdf" for e in uploads)
    assert {e["checklist_id"] for e in uploads} == {
        firm["checklists"][firm["ids"][1]]["id"], firm["checklists"][firm["ids"][2]]["id"]}
    opened = [e for e in entries if e["action"] == "checklist:opened"]
    assert opened[0]["checklist_id"] == firm["checklists"][firm["ids"][3]]["id"]
    assert json.loads(json.dumps(entries))  # plain values, ready for JSON


def test_the_default_period_is_this_month_else_the_latest(case, firm):
    db = case.db()
    try:
        assert overview.default_period(db, TODAY) == "2026-12"
        # In January with nothing generated yet: the period generated last (VAT).
        assert overview.default_period(db, date(2027, 1, 3)) == "2026-Q4"
        assert overview.periods(db) == ["2026-Q4", "2026-12"]
    finally:
        db.close()


def test_the_state_test_uses_the_handled_items_index(case):
    """The partial index serves only a query that repeats its WHERE term exactly:
    this fails if either side changes alone (and the overview slows down tenfold)."""
    db = case.db()
    try:
        sql, params = overview.counts_sql(overview.Query(period="2026-12"))
        plan = " ".join(row[3] for row in db.execute(
            "EXPLAIN QUERY PLAN " + sql, {**params, "today": TODAY.isoformat()}))
    finally:
        db.close()
    assert "checklist_items_handled" in plan

"""Keyset pages: every row once, in id order, whatever is added meanwhile."""

from __future__ import annotations

from datetime import date

import pytest

from monthlydocs import checklists, clients, paging, templates
from monthlydocs.checklists import STATES

from .conftest import NOW, TODAY, assert_problem, upload


def walk(api, path: str, limit: int) -> tuple[list[int], int]:
    """Every id a list gives by following next_cursor; and how many pages it took."""
    separator = "&" if "?" in path else "?"
    ids, pages, url = [], 0, f"{path}{separator}limit={limit}"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        ids += [row["id"] for row in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            assert "Link" not in response.headers
            url = None
        else:
            assert len(body["data"]) == limit
            link = response.headers["Link"]
            assert link.endswith('; rel="next"') and f"cursor={cursor}" in link
            url = link[1 : link.index(">")]  # follow the Link header itself
    return ids, pages


def add_clients(db, count: int) -> list[int]:
    start = db.execute("SELECT count(*) FROM clients").fetchone()[0]
    return [
        clients.add_client(
            db, clients.ClientInput(f"Client {n}", f"c{n}@x.example"), NOW, region="FR"
        )
        for n in range(start, start + count)
    ]


def test_clients_page_by_page(api, db, seed):
    added = add_clients(db, 5)
    ids, pages = walk(api, "/clients", 2)
    assert ids == [*seed.client_ids, *added]
    assert pages == 4
    assert walk(api, "/clients", 7) == ([*seed.client_ids, *added], 1)


def test_a_client_added_between_pages_is_seen_once(api, db, seed):
    add_clients(db, 2)
    first = api.get("/clients?limit=2").get_json()
    late = add_clients(db, 1)[0]
    rest = api.get(f"/clients?limit=10&cursor={first['next_cursor']}").get_json()
    ids = [c["id"] for c in first["data"] + rest["data"]]
    assert ids.count(late) == 1 and len(ids) == len(set(ids)) == 5


def test_filters_hold_across_pages(api, db, seed):
    added = add_clients(db, 4)
    template_id = templates.get_template(db, "monthly")["id"]
    clients.assign(db, added[1::2], template_id, NOW)
    ids, _ = walk(api, "/clients?template=monthly", 1)
    assert ids == [*seed.client_ids, added[1], added[3]]


def test_bad_cursors_and_limits_are_refused(api, seed):
    first = api.get("/clients?limit=1").get_json()
    assert first["next_cursor"]
    assert_problem(
        api.get(f"/checklists?cursor={first['next_cursor']}"),
        400,
        "invalid-request",
        cursor="not a cursor this list gave",
    )
    for cursor in ("garbage", "!!!", "Y2xpZW50czp4"):  # the last is "clients:x"
        assert_problem(
            api.get(f"/clients?cursor={cursor}"),
            400,
            "invalid-request",
            cursor="cursor",
        )
    for limit in ("0", "201", "ten"):
        assert_problem(
            api.get(f"/clients?limit={limit}"), 400, "invalid-request", limit="1 to 200"
        )


def test_checklists_page_by_page(api, db, seed):
    more = add_clients(db, 9)
    template = templates.get_template(db, "monthly")
    clients.assign(db, more, template["id"], NOW)
    checklists.generate(db, [checklists.Request(template)], NOW, TODAY, send=False)
    ids, pages = walk(api, "/checklists", 4)
    assert ids == sorted(ids) and len(ids) == 11 and pages == 3


def make_every_state(db, settings) -> dict[str, int]:
    """One checklist in each state on TODAY; returns state -> checklist id."""
    template = templates.get_template(db, "monthly")
    ids = add_clients(db, 5)
    clients.assign(db, ids, template["id"], NOW)
    result = checklists.generate(
        db, [checklists.Request(template, "2027-01")], NOW, TODAY, send=False
    )
    made = [result.created_by_client[cid][0] for cid in ids]
    complete, overdue, partial, opened, not_opened = made
    for item in checklists.items(db, complete):
        db.execute(
            "UPDATE checklist_items SET state = 'not_applicable' WHERE id = ?",
            [item["id"]],
        )
    checklists.refresh_completion(db, complete, NOW)
    db.execute("UPDATE checklists SET due_on = '2026-11-30' WHERE id = ?", [overdue])
    first_item = checklists.items(db, partial)[0]["id"]
    upload(db, settings, partial, first_item, "a.pdf", NOW)
    db.execute(
        "UPDATE checklists SET first_opened_at = ? WHERE id = ?",
        ["2026-12-01T08:00:00Z", opened],
    )
    return {
        "complete": complete,
        "overdue": overdue,
        "partial": partial,
        "opened": opened,
        "not_opened": not_opened,
    }


def test_the_state_filter_agrees_with_the_dashboards_state(api, db, settings, seed):
    expected = make_every_state(db, settings)
    assert set(expected) == set(STATES)
    _counts, rows = checklists.status(db, TODAY)
    by_state = {
        state: [r["id"] for r in rows if r["state"] == state] for state in STATES
    }
    for state, checklist_id in expected.items():
        assert checklist_id in by_state[state], state
        ids, _ = walk(api, f"/checklists?state={state}", 1)
        assert sorted(ids) == sorted(by_state[state]), state
    listed = {r["id"]: r["state"] for r in api.get("/checklists").get_json()["data"]}
    assert listed == {r["id"]: r["state"] for r in rows}


@pytest.mark.parametrize("on", [date(2026, 12, 1), date(2026, 12, 11)])
def test_paging_sql_state_matches_state_of_on_any_day(db, settings, seed, on):
    make_every_state(db, settings)
    for state in STATES:
        page = paging.checklists_page(db, on, state=state, limit=100)
        assert all(row["state"] == state for row in page.rows), state
    everything = paging.checklists_page(db, on, limit=100).rows
    assert sum(
        len(paging.checklists_page(db, on, state=state, limit=100).rows)
        for state in STATES
    ) == len(everything)


def test_events_page_with_a_cursor(api, seed):
    ids, pages = walk(api, "/events", 3)
    assert ids == sorted(ids) and pages >= 3
    every = api.get("/events?limit=1000").get_json()["data"]
    assert ids == [e["id"] for e in every]


def test_templates_page_by_page(api, db, seed):
    added = [
        templates.save_template(db, f"t{n}", NOW, name=f"Template {n}")[0]
        for n in range(4)
    ]
    ids, pages = walk(api, "/templates", 2)
    assert ids == [seed.template_id, *added]
    assert pages == 3
    assert walk(api, "/templates", 50) == ([seed.template_id, *added], 1)
    assert_problem(
        api.get("/templates?cursor=bm9wZTox"), 400, "invalid-request", cursor="cursor"
    )
    assert_problem(api.get("/templates?limit=0"), 400, "invalid-request", limit="1 to")

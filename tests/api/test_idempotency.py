"""Idempotency-Key: a POST retried after a lost answer acts once."""

from __future__ import annotations

from monthlydocs import tokens

from .conftest import NOW, assert_problem

BODY = {"name": "Café Lumière", "email": "lea@lumiere.example"}


def count_clients(db) -> int:
    return db.execute("SELECT count(*) FROM clients").fetchone()[0]


def test_the_same_request_with_the_same_key_is_replayed_not_repeated(api, db):
    key = {"Idempotency-Key": "7f9c2b1e-4a8d-4c3e-9b6a-1d2e3f4a5b6c"}
    first = api.post("/clients", json=BODY, headers=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    before = count_clients(db)

    again = api.post("/clients", json=BODY, headers=key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.mimetype == "application/json"
    assert count_clients(db) == before

    # Without a key the same body is a new request (here refused as a duplicate).
    assert api.post("/clients", json=BODY).status_code == 409


def test_the_same_key_with_another_body_is_refused(api, db):
    key = {"Idempotency-Key": "k-1"}
    assert api.post("/clients", json=BODY, headers=key).status_code == 201
    other = {**BODY, "email": "other@lumiere.example"}
    problem = assert_problem(
        api.post("/clients", json=other, headers=key), 422, "idempotency-key-reused"
    )
    assert "new key" in problem["detail"]
    assert_problem(
        api.post("/templates", json=BODY, headers=key), 422, "idempotency-key-reused"
    )
    assert (
        db.execute(
            "SELECT count(*) FROM clients WHERE email = 'other@lumiere.example'"
        ).fetchone()[0]
        == 0
    )


def test_an_error_answer_is_replayed_too(api, db):
    key = {"Idempotency-Key": "k-2"}
    bad = {"name": "A", "email": "nope"}
    first = api.post("/clients", json=bad, headers=key)
    assert first.status_code == 422
    again = api.post("/clients", json=bad, headers=key)
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    assert again.mimetype == "application/problem+json"
    assert again.get_json() == first.get_json()


def test_keys_belong_to_one_token(api, db):
    key = {"Idempotency-Key": "shared"}
    assert api.post("/clients", json=BODY, headers=key).status_code == 201
    other = api.as_token(tokens.create_token(db, "other", NOW)[1])
    response = other.post(
        "/clients", json={**BODY, "email": "b@lumiere.example"}, headers=key
    )
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers


def test_a_key_in_progress_is_a_conflict_until_it_is_abandoned(api, db, clock):
    token_id = db.execute(
        "SELECT id FROM api_tokens WHERE name = 'crm-sync'"
    ).fetchone()
    digest = tokens.request_digest(
        "POST", "/api/v1/clients", api.http.application.json.dumps(BODY).encode()
    )
    # Another worker took the key and has not answered yet.
    assert tokens.begin_idempotent(db, token_id[0], "busy", digest, NOW) is None
    key = {"Idempotency-Key": "busy"}
    problem = assert_problem(
        api.post("/clients", json=BODY, headers=key), 409, "idempotency-key-in-progress"
    )
    assert "retry in a moment" in problem["detail"]
    # A worker that died leaves the key; after five minutes a retry may run.
    clock.advance(minutes=5)
    assert api.post("/clients", json=BODY, headers=key).status_code == 201


def test_keys_expire_after_a_day(api, db, clock):
    key = {"Idempotency-Key": "daily"}
    assert api.post("/clients", json=BODY, headers=key).status_code == 201
    clock.advance(hours=24, seconds=1)
    other = {**BODY, "email": "new@lumiere.example"}
    response = api.post("/clients", json=other, headers=key)
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers


def test_a_malformed_key_is_refused(api, db):
    for value in ("", "x" * 256, "clé"):
        response = api.post(
            "/clients",
            json=BODY,
            headers={"Idempotency-Key": value.encode().decode("latin-1")},
        )
        assert_problem(
            response, 400, "invalid-request", **{"Idempotency-Key": "invalid"}
        )
    assert count_clients(db) == 2


def test_other_writes_honour_the_key(api, seed, db):
    key = {"Idempotency-Key": "gen-2027-01"}
    body = {"template": "monthly", "period": "2027-01", "send": False}
    first = api.post("/checklists", json=body, headers=key)
    assert first.status_code == 201
    again = api.post("/checklists", json=body, headers=key)
    assert again.get_json() == first.get_json() and again.status_code == 201

    db.execute(
        "UPDATE checklists SET link_sent_at = '2026-11-28T09:00:00Z' WHERE id = ?",
        [seed.checklist_ids[0]],
    )
    remind = {"Idempotency-Key": "remind-once"}
    path = f"/checklists/{seed.checklist_ids[0]}/reminders"
    assert api.post(path, headers=remind).status_code == 202
    assert api.post(path, headers=remind).status_code == 202
    assert (
        db.execute("SELECT count(*) FROM messages WHERE kind = 'reminder'").fetchone()[
            0
        ]
        == 1
    )

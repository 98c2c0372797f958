"""The schema is versioned and migrated on open; old databases upgrade without loss."""

import shutil
import sqlite3
from pathlib import Path

from monthlydocs.db import migrations, open_db, schema_version

FIRST_SCHEMA = Path(__file__).parent / "fixtures" / "db" / "first_schema.db"


def test_new_database_has_wal_foreign_keys_and_every_migration(tmp_path):
    db = open_db(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert schema_version(db) == [m.name for m in migrations._migrations]
    for table in (
        "clients",
        "templates",
        "template_slots",
        "assignments",
        "checklists",
        "checklist_items",
        "documents",
        "events",
        "messages",
    ):
        assert db[table].exists(), table


def test_opening_twice_changes_nothing(tmp_path):
    open_db(tmp_path / "x.db").close()
    db = open_db(tmp_path / "x.db")
    assert len(schema_version(db)) == len(migrations._migrations)


def test_a_database_made_by_the_first_schema_upgrades_without_loss(tmp_path):
    """The fixture was written by migration 0001 alone, with a little of everything."""
    copy = tmp_path / "old.db"
    shutil.copy(FIRST_SCHEMA, copy)
    raw = sqlite3.connect(copy)
    before = {
        table: raw.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in (
            "clients",
            "templates",
            "template_slots",
            "assignments",
            "checklists",
            "checklist_items",
            "documents",
            "events",
            "messages",
        )
    }
    raw.close()
    # Every table holds rows, so that the comparison below can catch a loss.
    assert all(before.values()), [t for t, rows in before.items() if not rows]
    assert len(before["assignments"]) == 2 and len(before["documents"]) == 1

    db = open_db(copy)

    assert schema_version(db) == [m.name for m in migrations._migrations]
    for table, rows in before.items():
        columns = [
            c[1]
            for c in sqlite3.connect(FIRST_SCHEMA).execute(
                f"PRAGMA table_info({table})"
            )
        ]
        after = db.execute(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1"
        ).fetchall()
        assert after == rows, table
    assert db.execute("SELECT name FROM clients ORDER BY id").fetchall()[0][0] == (
        "Boulangerie Dupont"
    )


def test_the_fixture_is_a_database_of_the_first_schema_only(tmp_path):
    """Rows may be added to the fixture, never a later migration's schema."""
    fresh = open_db(tmp_path / "first.db", migrate=False)
    names = [m.name for m in migrations._migrations]
    migrations.apply(fresh, stop_before=names[1])
    fixture = sqlite3.connect(FIRST_SCHEMA)

    def schema(conn):
        return sorted(
            conn.execute(
                "SELECT type, name, sql FROM sqlite_master"
                " WHERE name NOT LIKE '%migrations%'"
            ).fetchall()
        )

    assert [
        row[0]
        for row in fixture.execute("SELECT name FROM _sqlite_migrations ORDER BY id")
    ] == [names[0]]
    assert schema(fixture) == schema(fresh.conn)
    assert fixture.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert fixture.execute("PRAGMA foreign_key_check").fetchall() == []


def test_foreign_keys_cascade_from_clients(tmp_path):
    db = open_db(tmp_path / "x.db")
    now = "2026-12-01T09:00:00Z"
    db.execute(
        "INSERT INTO clients (id, name, email, created_at, updated_at)"
        " VALUES (1, 'A', 'a@x.example', ?, ?)",
        [now, now],
    )
    db.execute(
        "INSERT INTO templates (id, slug, name, created_at, updated_at)"
        " VALUES (1, 't', 'T', ?, ?)",
        [now, now],
    )
    db.execute(
        "INSERT INTO checklists (id, client_id, template_id, template_name, period,"
        " due_on, token, token_hash, created_at)"
        " VALUES (1, 1, 1, 'T', '2026-12', '2026-12-10', 'tok', 'hash', ?)",
        [now],
    )
    db.execute(
        "INSERT INTO checklist_items (checklist_id, name, position) VALUES (1, 'x', 1)"
    )
    db.conn.commit()
    db.execute("DELETE FROM clients WHERE id = 1")
    assert db.execute("SELECT count(*) FROM checklist_items").fetchone()[0] == 0

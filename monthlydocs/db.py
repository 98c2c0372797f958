"""Opening the database, and the schema as numbered migrations.

A database made by any earlier version is brought up to date when it is opened; each
migration and the record that it ran are one transaction. Never edit a migration that has
shipped: add a new one.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database, Migrations

migrations = Migrations("monthlydocs")

BUSY_TIMEOUT_S = 30


def open_db(path: str | Path, migrate: bool = True) -> Database:
    """Open (creating if needed) the SQLite file in WAL mode with foreign keys on."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    db = Database(conn, execute_plugins=False)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = NORMAL")
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.enable_wal()
    if migrate:
        migrations.apply(db)
    return db


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """A transaction that takes the write lock at once (BEGIN IMMEDIATE).

    Use it where a decision read inside the transaction must still hold when the writes
    land (claiming, generating): a second process waits instead of racing.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    else:
        db.conn.execute("COMMIT")


def schema_version(db: Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


@migrations(name="0001_initial")
def _initial(db: Database) -> None:
    _run_statements(
        db,
        """
        CREATE TABLE clients (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            email TEXT NOT NULL,
            phone TEXT,
            language TEXT,
            notes TEXT,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'archived', 'pending')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX clients_email ON clients (email COLLATE NOCASE);

        CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            cadence TEXT NOT NULL DEFAULT 'monthly'
                CHECK (cadence IN ('monthly', 'quarterly', 'yearly', 'once')),
            due_day INTEGER NOT NULL DEFAULT 10 CHECK (due_day BETWEEN 1 AND 31),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            archived_at TEXT
        );

        CREATE TABLE template_slots (
            id INTEGER PRIMARY KEY,
            template_id INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            optional INTEGER NOT NULL DEFAULT 0,
            multiple INTEGER NOT NULL DEFAULT 0,
            position INTEGER NOT NULL,
            UNIQUE (template_id, name)
        );

        CREATE TABLE assignments (
            client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            template_id INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
            assigned_at TEXT NOT NULL,
            PRIMARY KEY (client_id, template_id)
        );

        CREATE TABLE checklists (
            id INTEGER PRIMARY KEY,
            client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            template_id INTEGER NOT NULL REFERENCES templates (id),
            template_name TEXT NOT NULL,
            period TEXT NOT NULL,
            due_on TEXT NOT NULL,
            token TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            link_sent_at TEXT,
            first_opened_at TEXT,
            last_opened_at TEXT,
            open_count INTEGER NOT NULL DEFAULT 0,
            completed_at TEXT,
            archived_at TEXT,
            UNIQUE (client_id, template_id, period)
        );
        CREATE INDEX checklists_period ON checklists (period, template_id);

        CREATE TABLE checklist_items (
            id INTEGER PRIMARY KEY,
            checklist_id INTEGER NOT NULL REFERENCES checklists (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            optional INTEGER NOT NULL DEFAULT 0,
            multiple INTEGER NOT NULL DEFAULT 0,
            position INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'to_send' CHECK (state IN
                ('to_send', 'received', 'not_applicable', 'rejected', 'approved')),
            note TEXT,
            updated_at TEXT
        );
        CREATE INDEX checklist_items_checklist ON checklist_items (checklist_id);

        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES checklist_items (id) ON DELETE CASCADE,
            original_filename TEXT NOT NULL,
            stored_path TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            content_type TEXT NOT NULL,
            uploaded_at TEXT NOT NULL,
            review_state TEXT NOT NULL DEFAULT 'pending'
                CHECK (review_state IN ('pending', 'approved', 'rejected')),
            review_note TEXT,
            reviewer TEXT,
            reviewed_at TEXT,
            UNIQUE (item_id, sha256)
        );

        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject_type TEXT NOT NULL,
            subject_id INTEGER,
            client_id INTEGER,
            data TEXT
        );
        CREATE INDEX events_client ON events (client_id);

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
            client_id INTEGER REFERENCES clients (id) ON DELETE CASCADE,
            recipient TEXT NOT NULL,
            kind TEXT NOT NULL,
            language TEXT NOT NULL,
            checklist_ids TEXT NOT NULL DEFAULT '[]',
            dedupe_key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            claimed_at TEXT,
            sent_at TEXT,
            message_id TEXT
        );
        CREATE INDEX messages_due ON messages (state, next_attempt_at);
        """,
    )


@migrations(name="0002_reminders")
def _reminders(db: Database) -> None:
    _run_statements(
        db,
        """
        ALTER TABLE clients ADD COLUMN reminders_paused_at TEXT;
        ALTER TABLE templates ADD COLUMN reminder_days TEXT;
        ALTER TABLE checklists ADD COLUMN escalated_at TEXT;
        ALTER TABLE messages ADD COLUMN claimed_by TEXT;
        CREATE TABLE reminder_steps (
            checklist_id INTEGER NOT NULL REFERENCES checklists (id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'skipped', 'manual')),
            message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
            decided_at TEXT NOT NULL,
            PRIMARY KEY (checklist_id, step)
        );
        CREATE INDEX messages_client_kind ON messages (client_id, kind, created_at);
        """,
    )


@migrations(name="0003_staff")
def _staff(db: Database) -> None:
    _run_statements(
        db,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL,
            language TEXT,
            created_at TEXT NOT NULL,
            last_login_at TEXT
        );
        CREATE UNIQUE INDEX users_email ON users (email COLLATE NOCASE);
        CREATE INDEX documents_item ON documents (item_id);
        CREATE INDEX checklists_client ON checklists (client_id);
        """,
    )


@migrations(name="0004_api")
def _api(db: Database) -> None:
    # The events table is rebuilt with AUTOINCREMENT, rows and ids unchanged. Without
    # it SQLite hands the id of a deleted last row (an erased client's events) to the
    # next event, which a feed reader or webhook already past that id would never see.
    _run_statements(
        db,
        """
        CREATE TABLE events_autoincrement (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject_type TEXT NOT NULL,
            subject_id INTEGER,
            client_id INTEGER,
            data TEXT
        );
        INSERT INTO events_autoincrement
            (id, at, actor, action, subject_type, subject_id, client_id, data)
            SELECT id, at, actor, action, subject_type, subject_id, client_id, data
            FROM events;
        DROP TABLE events;
        ALTER TABLE events_autoincrement RENAME TO events;
        CREATE INDEX events_client ON events (client_id);

        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            read_only INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        );
        CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name COLLATE NOCASE)
            WHERE revoked_at IS NULL;

        CREATE TABLE api_idempotency (
            token_id INTEGER NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status INTEGER,
            content_type TEXT,
            body BLOB,
            location TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (token_id, key)
        );
        CREATE INDEX api_idempotency_created ON api_idempotency (created_at);

        CREATE TABLE webhooks (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_event_id INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
            event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            status_code INTEGER,
            last_error TEXT,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            claimed_at TEXT,
            claimed_by TEXT,
            delivered_at TEXT,
            UNIQUE (webhook_id, event_id)
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
        CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
        """,
    )


@migrations(name="0005_dashboard")
def _dashboard(db: Database) -> None:
    # The dashboard's overview asks of every checklist of a period whether any item is
    # handled (its state) and when an item last changed (its last activity). The first
    # index holds handled items only, so the question is one lookup; the query must
    # repeat its WHERE term exactly for SQLite to use it. The second answers max().
    _run_statements(
        db,
        """
        CREATE INDEX checklist_items_handled ON checklist_items (checklist_id)
            WHERE state IN ('received', 'approved', 'not_applicable');
        CREATE INDEX checklist_items_updated
            ON checklist_items (checklist_id, updated_at);
        """,
    )


@migrations(name="0006_message_rules")
def _message_rules(db: Database) -> None:
    # Messages get a final state 'dropped' (not sent on purpose: the checklists were
    # completed or the client paused or archived before it left, the reason kept in
    # drop_reason), 'manual' (a reminder the firm asked for: sent whatever the hour) and
    # 'not_before' (a reminder held back until the send hours open again). A CHECK
    # constraint cannot be altered, so the table is rebuilt with the same ids. Dropping
    # the old table sets reminder_steps.message_id to NULL (its foreign key action):
    # the links are kept aside and put back.
    _run_statements(
        db,
        """
        CREATE TEMP TABLE step_messages AS
            SELECT checklist_id, step, message_id FROM reminder_steps
            WHERE message_id IS NOT NULL;
        CREATE TABLE messages_rebuilt (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
            client_id INTEGER REFERENCES clients (id) ON DELETE CASCADE,
            recipient TEXT NOT NULL,
            kind TEXT NOT NULL,
            language TEXT NOT NULL,
            checklist_ids TEXT NOT NULL DEFAULT '[]',
            dedupe_key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'dropped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            claimed_at TEXT,
            sent_at TEXT,
            message_id TEXT,
            claimed_by TEXT,
            manual INTEGER NOT NULL DEFAULT 0,
            not_before TEXT,
            drop_reason TEXT
        );
        INSERT INTO messages_rebuilt (id, channel, client_id, recipient, kind, language,
            checklist_ids, dedupe_key, state, attempts, last_error, created_at,
            next_attempt_at, claimed_at, sent_at, message_id, claimed_by, manual)
            SELECT m.id, m.channel, m.client_id, m.recipient, m.kind, m.language,
                m.checklist_ids, m.dedupe_key, m.state, m.attempts, m.last_error,
                m.created_at, m.next_attempt_at, m.claimed_at, m.sent_at, m.message_id,
                m.claimed_by, EXISTS (SELECT 1 FROM reminder_steps r
                    WHERE r.message_id = m.id AND r.outcome = 'manual')
            FROM messages m;
        DROP TABLE messages;
        ALTER TABLE messages_rebuilt RENAME TO messages;
        CREATE INDEX messages_due ON messages (state, next_attempt_at);
        CREATE INDEX messages_client_kind ON messages (client_id, kind, created_at);
        UPDATE reminder_steps SET message_id = (SELECT s.message_id FROM step_messages s
            WHERE s.checklist_id = reminder_steps.checklist_id
            AND s.step = reminder_steps.step)
            WHERE message_id IS NULL AND EXISTS (SELECT 1 FROM step_messages s
            WHERE s.checklist_id = reminder_steps.checklist_id
            AND s.step = reminder_steps.step);
        DROP TABLE step_messages;
        """,
    )


def _run_statements(db: Database, script: str) -> None:
    # executescript() would COMMIT first and break the migration's transaction.
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


@migrations(name="0007_translations")
def _translations(db: Database) -> None:
    # A template's and a slot's wording in the clients' languages, as a JSON object
    # {"fr": {"name": ..., "description": ...}}; the base columns stay the firm's own
    # wording. Checklists and their items copy them at generation, like the base text.
    _run_statements(
        db,
        """
        ALTER TABLE templates ADD COLUMN translations TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE template_slots ADD COLUMN translations TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE checklist_items ADD COLUMN translations TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE checklists ADD COLUMN template_translations TEXT NOT NULL
            DEFAULT '{}';
        """,
    )

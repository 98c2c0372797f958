"""Review, export, purge and staff users, from the core and the command line."""

import csv
import hashlib
import io
import zipfile

import pytest

from conftest import NOW, example_wording, use_smtp
from monthlydocs import (
    checklists,
    clients,
    export,
    outbox,
    portal,
    review,
    storage,
    templates,
)
from monthlydocs.errors import MonthlydocsError
from monthlydocs.users import LoginFailed, WeakPassword, add_user, authenticate
from monthlydocs.workspace import example_templates_path

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def desk(settings, db):
    """Two clients on `monthly`, with a few uploaded documents."""
    templates.load_file(db, example_templates_path(), NOW)
    monthly = templates.get_template(db, "monthly")
    ids = [
        clients.add_client(
            db, clients.ClientInput(name, email, language=lang), NOW, region="FR"
        )
        for name, email, lang in (
            ("Müller GmbH", "m@mueller.example", "de"),
            ("Boulangerie Dupont", "d@dupont.example", "fr"),
        )
    ]
    clients.assign(db, ids, monthly["id"], NOW)
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date(), send=False)
    return settings, db, ids


def upload(settings, db, client_id, slot, name, content=PDF):
    checklist = next(
        db.query("SELECT * FROM checklists WHERE client_id = ?", [client_id])
    )
    item = next(
        db.query(
            "SELECT id FROM checklist_items WHERE checklist_id = ? AND name = ?",
            [checklist["id"], slot],
        )
    )
    incoming = storage.receive(io.BytesIO(content), settings.files_dir, 10 << 20, name)
    return portal.upload(db, settings, checklist, item["id"], incoming, NOW).document


def item_state(db, document_id):
    return db.execute(
        "SELECT i.state, i.note FROM documents d JOIN checklist_items i"
        " ON i.id = d.item_id WHERE d.id = ?",
        [document_id],
    ).fetchone()


def test_approve_and_reject_set_item_states(desk):
    settings, db, (mueller, _dupont) = desk
    first = upload(settings, db, mueller, "Bank statements", "a.pdf")
    second = upload(settings, db, mueller, "Bank statements", "b.pdf", PDF + b"2")
    review.approve(db, first["id"], "anne", NOW)
    assert item_state(db, first["id"]) == ("received", None)  # b.pdf still waits
    review.reject(db, settings, second["id"], "  Page 2   is missing ", "anne", NOW)
    assert item_state(db, first["id"]) == ("approved", None)
    only = upload(settings, db, mueller, "Sales invoices", "s.pdf", PDF + b"3")
    review.reject(db, settings, only["id"], "Wrong month", "anne", NOW)
    assert item_state(db, only["id"]) == ("rejected", "Wrong month")
    assert review.get_document(db, second["id"])["review_note"] == "Page 2 is missing"
    with pytest.raises(MonthlydocsError, match="needs a note"):
        review.reject(db, settings, first["id"], "  ", "anne", NOW)


def test_rejection_emails_the_client_in_their_language(desk, cli, smtp_server):
    settings, db, (mueller, _dupont) = desk
    use_smtp(cli.config, smtp_server.port)
    document = upload(settings, db, mueller, "Bank statements", "kontoauszug.pdf")
    result = cli("reject", str(document["id"]), "--note", "Seite 2 fehlt")
    assert result.exit_code == 0, result.output
    assert "the client was emailed" in result.stdout
    [message] = smtp_server.parsed()
    assert message["To"].addresses[0].addr_spec == "m@mueller.example"
    assert message["Content-Language"] == "de"
    plain = message.get_body("plain").get_content()
    assert "Seite 2 fehlt" in plain
    assert example_wording("monthly", "Bank statements", "de") in plain
    assert "/c/" in plain


def test_rejection_reopens_a_completed_checklist(desk):
    settings, db, (mueller, _dupont) = desk
    documents = [
        upload(settings, db, mueller, slot, f"{n}.pdf", PDF + bytes([n]))
        for n, slot in enumerate(
            ("Bank statements", "Supplier invoices", "Sales invoices")
        )
    ]
    checklist_id = db.execute(
        "SELECT id FROM checklists WHERE client_id = ?", [mueller]
    ).fetchone()[0]
    assert checklists.get_checklist(db, checklist_id)["completed_at"]
    review.reject(db, settings, documents[0]["id"], "Unreadable", "anne", NOW)
    assert checklists.get_checklist(db, checklist_id)["completed_at"] is None


def test_review_command_lists_documents(desk, cli):
    settings, db, (mueller, _dupont) = desk
    document = upload(settings, db, mueller, "Bank statements", "auszug.pdf")
    listing = cli("review", "müller").stdout
    assert "auszug.pdf" in listing and "pending" in listing
    assert cli("approve", str(document["id"])).exit_code == 0
    assert "approved" in cli("review", "müller").stdout
    missing = cli("approve", "999")
    assert missing.exit_code == 1 and "No document #999" in missing.stderr


def test_export_zip_matches_its_manifest(desk, cli, tmp_path):
    settings, db, (mueller, dupont) = desk
    upload(settings, db, mueller, "Bank statements", "auszug.pdf")
    upload(settings, db, mueller, "Bank statements", "auszug.pdf", PDF + b"other")
    upload(settings, db, dupont, "Expense receipts", "=cmd|calc.pdf", PDF + b"x")
    target = tmp_path / "out" / "december.zip"
    result = cli("export", "--period", "2026-12", "--out", str(target))
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        manifest = list(
            csv.DictReader(
                io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))
            )
        )
        assert sorted(row["file"] for row in manifest) == sorted(
            n for n in names if n != "manifest.csv"
        )
        for row in manifest:
            data = archive.read(row["file"])
            assert hashlib.sha256(data).hexdigest() == row["sha256"]
            assert len(data) == int(row["size"])
    assert "Müller GmbH/2026-12/Monthly bookkeeping/Bank statements/auszug.pdf" in names
    assert (
        "Müller GmbH/2026-12/Monthly bookkeeping/Bank statements/auszug (2).pdf"
        in names
    )
    dupont_row = next(r for r in manifest if r["client"] == "Boulangerie Dupont")
    assert dupont_row["file"].endswith("=cmd_calc.pdf")
    assert not list(tmp_path.glob("out/*.part"))


def test_export_folder_and_filters(desk, cli, tmp_path):
    settings, db, (mueller, dupont) = desk
    approved = upload(settings, db, mueller, "Bank statements", "a.pdf")
    upload(settings, db, dupont, "Bank statements", "b.pdf", PDF + b"b")
    review.approve(db, approved["id"], "anne", NOW)
    result = cli("export", "--approved-only", "--dir", str(tmp_path / "folder"))
    assert result.exit_code == 0, result.output
    files = sorted(
        p.relative_to(tmp_path / "folder").as_posix()
        for p in (tmp_path / "folder").rglob("*")
        if p.is_file()
    )
    assert files == [
        "Müller GmbH/2026-12/Monthly bookkeeping/Bank statements/a.pdf",
        "manifest.csv",
    ]
    only = cli("export", "--client", "dupont", "--out", str(tmp_path / "d.zip"))
    assert "Exported 1 documents" in only.stdout
    nothing = cli("export", "--period", "2020-01", "--out", str(tmp_path / "x.zip"))
    assert nothing.exit_code == 1 and "No documents match" in nothing.stderr
    both = cli("export", "--out", "a.zip", "--dir", "b")
    assert both.exit_code != 0


def test_manifest_never_writes_formulas():
    row = {
        "client": '=HYPERLINK("x")',
        "email": "=x@example.com",
        "template": "-T",
        "period": "+2026-12",
        "slot": "+1",
        "size": "=1",
        "sha256": "@0",
        "uploaded_at": "\t2026",
        "review_state": "\r=pending",
        "review_note": "@x",
    }
    entry = export.Entry("=1+2_cmd/a.pdf", None, row)
    text = export.manifest([entry]).decode("utf-8-sig")
    header, parsed = list(csv.reader(io.StringIO(text)))
    assert header == export.MANIFEST_COLUMNS and len(parsed) == len(header)
    for column, cell in zip(header, parsed, strict=True):
        assert cell.startswith("'"), column
    assert parsed[0] == '\'=HYPERLINK("x")' and parsed[5] == "'=1+2_cmd/a.pdf"


def test_export_of_a_self_chosen_name_and_email_has_no_formula(desk, cli, tmp_path):
    settings, db, (mueller, _dupont) = desk
    db.execute(
        "UPDATE clients SET name = ?, email = ? WHERE id = ?",
        ["=1+2*cmd", "=x@example.com", mueller],
    )
    db.conn.commit()
    upload(settings, db, mueller, "Bank statements", "a.pdf")
    target = tmp_path / "x.zip"
    assert cli("export", "--out", str(target)).exit_code == 0
    with zipfile.ZipFile(target) as archive:
        text = archive.read("manifest.csv").decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in row.values())
    assert row["email"] == "'=x@example.com"
    # The folder itself never starts like a formula, so the file column is the
    # archive's name exactly.
    assert row["file"].startswith("_=1+2_cmd/2026-12/")
    with zipfile.ZipFile(target) as archive:
        assert row["file"] in archive.namelist()


def test_an_export_past_65535_entries_is_zip64(tmp_path):
    """ZIP's classic records count entries in 16 bits: past 65,535 the archive needs
    its ZIP64 end records, or readers see a truncated or broken file."""
    source = tmp_path / "tiny.pdf"
    source.write_bytes(PDF)
    digest = hashlib.sha256(PDF).hexdigest()
    count = 0xFFFF + 2
    rows = [
        {
            "client": f"Client {n // 1000}",
            "email": "c@x.example",
            "template": "Monthly",
            "period": "2026-12",
            "slot": "Receipts",
            "original_filename": f"receipt {n}.pdf",
            "stored_path": "tiny.pdf",
            "size": len(PDF),
            "sha256": digest,
            "uploaded_at": "2026-12-01T09:00:00Z",
            "review_state": "pending",
            "review_note": None,
        }
        for n in range(count)
    ]
    items = export.entries(rows, tmp_path)
    target = tmp_path / "big.zip"
    written = export.write_zip(items, target)

    assert written == target.stat().st_size
    with target.open("rb") as archive_file:
        archive_file.seek(-(22 + 20 + 56 + 1024), 2)
        tail = archive_file.read()
    assert b"PK\x06\x06" in tail  # the ZIP64 end of central directory record
    assert b"PK\x06\x07" in tail  # and its locator
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        assert len(names) == count + 1
        assert archive.read(names[-2]) == PDF
        manifest = archive.read("manifest.csv").decode("utf-8-sig")
    assert manifest.count("\r\n") == count + 1


def test_purge_respects_retention_and_deletes_files(desk, cli):
    settings, db, (mueller, _dupont) = desk
    document = upload(settings, db, mueller, "Bank statements", "old.pdf")
    db.execute(
        "UPDATE checklists SET period = '2014-03', completed_at = ?"
        " WHERE client_id = ?",
        ["2014-04-01T00:00:00Z", mueller],
    )
    db.conn.commit()
    path = settings.files_dir / document["stored_path"]
    assert path.exists()
    too_recent = cli("purge", "--before", "2026-01")
    assert too_recent.exit_code == 1 and "kept 10 years" in too_recent.stderr
    preview = cli("purge", "--before", "2015-01", "--dry-run")
    assert "1 checklists, 1 documents" in preview.stdout and path.exists()
    done = cli("purge", "--before", "2015-01", "--yes")
    assert done.exit_code == 0 and not path.exists()
    assert (
        db.execute(
            "SELECT count(*) FROM checklists WHERE client_id = ?", [mueller]
        ).fetchone()[0]
        == 0
    )
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 1


def test_purge_takes_one_offs_and_what_was_recorded_about_the_checklists(desk, cli):
    import getpass
    import json

    settings, db, (mueller, dupont) = desk
    onboarding_id, _ = templates.save_template(
        db, "onboarding", NOW, name="Onboarding", cadence="once"
    )
    templates.save_slot(db, "onboarding", "ID card")
    clients.assign(db, [mueller, dupont], onboarding_id, NOW)
    onboarding = templates.get_template(db, "onboarding")
    checklists.generate(
        db, [checklists.Request(onboarding)], NOW, NOW.date(), send=False
    )

    def checklist_of(client_id, period):
        return db.execute(
            "SELECT id FROM checklists WHERE client_id = ? AND period = ?",
            [client_id, period],
        ).fetchone()[0]

    old_monthly = checklist_of(mueller, "2026-12")
    old_once = checklist_of(dupont, "once")
    recent_once = checklist_of(mueller, "once")
    kept_monthly = checklist_of(dupont, "2026-12")
    rejected = upload(settings, db, mueller, "Bank statements", "old.pdf")
    review.reject(db, settings, rejected["id"], "Seite 2 fehlt", "anne", NOW)
    removed = upload(settings, db, mueller, "Sales invoices", "gone.pdf", PDF + b"g")
    checklist_row = checklists.get_checklist(db, old_monthly)
    portal.remove_document(db, settings, checklist_row, removed["id"], NOW)
    outbox.deliver_all(db, settings, NOW)  # the rejection email: message:sent
    # One email about a purged checklist and a kept one.
    db.execute(
        "INSERT INTO messages (channel, client_id, recipient, kind, language,"
        " checklist_ids, dedupe_key, created_at, next_attempt_at)"
        " VALUES ('email', ?, 'd@dupont.example', 'reminder', 'fr', ?, 'both',"
        " '2014-01-01T00:00:00Z', '2014-01-01T00:00:00Z')",
        [dupont, json.dumps([old_once, kept_monthly])],
    )
    for checklist_id, period, closed in (
        (old_monthly, "2014-03", "2014-04-01T00:00:00Z"),
        (old_once, "once", "2014-05-02T00:00:00Z"),  # before 2015-01: goes
        (recent_once, "once", "2020-01-01T00:00:00Z"),  # after: stays
    ):
        db.execute(
            "UPDATE checklists SET period = ?, completed_at = ? WHERE id = ?",
            [period, closed, checklist_id],
        )
    db.conn.commit()
    purged_ids = {old_monthly, old_once}
    top, before = db.execute("SELECT max(id), count(*) FROM events").fetchone()

    preview = cli("purge", "--before", "2015-01", "--dry-run")
    assert "2 checklists, 1 documents" in preview.stdout
    done = cli("purge", "--before", "2015-01", "--yes")
    assert done.exit_code == 0, done.output

    left = {row[0] for row in db.execute("SELECT id FROM checklists")}
    assert left == {recent_once, kept_monthly}
    events = list(db.query("SELECT * FROM events WHERE id <= ?", [top]))
    text = json.dumps(events, ensure_ascii=False)
    assert "Seite 2 fehlt" not in text and rejected["sha256"] not in text
    for event in events:
        if event["subject_type"] == "checklist":
            assert event["subject_id"] not in purged_ids, event
        if event["subject_type"] == "document":
            assert event["subject_id"] not in (rejected["id"], removed["id"]), event
    kept_about = {e["subject_id"] for e in events if e["action"] == "checklist:created"}
    assert kept_about == {recent_once, kept_monthly}
    messages = list(db.query("SELECT kind, checklist_ids FROM messages"))
    assert messages == [{"kind": "reminder", "checklist_ids": f"[{kept_monthly}]"}]
    [summary] = db.query("SELECT * FROM events WHERE id > ?", [top])
    assert summary["action"] == "checklist:purged"
    assert summary["actor"] == f"cli:{getpass.getuser()}"
    assert summary["client_id"] is None and summary["subject_id"] is None
    counts = json.loads(summary["data"])
    assert counts["checklists"] == 2 and counts["documents"] == 1
    assert counts["messages"] == 1 and counts["events"] == before - len(events)
    assert set(counts) == {"checklists", "documents", "messages", "events"}
    assert not (settings.files_dir / rejected["stored_path"]).exists()


def test_users_hash_passwords_and_authenticate(db):
    from argon2 import PasswordHasher

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    user_id = add_user(
        db,
        "Anne@Cabinet.example",
        "correct horse battery",
        NOW,
        name="Anne",
        hasher=fast,
    )
    stored = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2") and "horse" not in stored
    assert (
        authenticate(
            db, "anne@cabinet.example", "correct horse battery", NOW, hasher=fast
        )["id"]
        == user_id
    )
    for email, password in (
        ("anne@cabinet.example", "wrong password!"),
        ("nobody@cabinet.example", "correct horse battery"),
    ):
        with pytest.raises(LoginFailed, match="Wrong email or password"):
            authenticate(db, email, password, NOW, hasher=fast)
    with pytest.raises(WeakPassword):
        add_user(db, "b@cabinet.example", "short", NOW, hasher=fast)


def test_user_commands(cli):
    added = cli(
        "user",
        "add",
        "anne@cabinet.example",
        "--name",
        "Anne",
        input="long enough pw\nlong enough pw\n",
    )
    assert added.exit_code == 0, added.output
    assert "anne@cabinet.example" in cli("user", "list").stdout
    weak = cli("user", "add", "b@cabinet.example", input="short\nshort\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.stderr
    assert cli("user", "remove", "anne@cabinet.example").exit_code == 0
    assert "0 users" in cli("user", "list").stdout


def test_user_edit_changes_the_name_and_the_language(cli, db):
    cli("user", "add", "anne@cabinet.example", input="long enough pw\nlong enough pw\n")
    edited = cli(
        "user", "edit", "ANNE@cabinet.example", "--language", "Deutsch", "--name", "A M"
    )
    assert edited.exit_code == 0, edited.output
    assert db.execute("SELECT name, language FROM users").fetchone() == ("A M", "de")
    assert cli("user", "edit", "anne@cabinet.example", "--language", "").exit_code == 0
    assert db.execute("SELECT name, language FROM users").fetchone() == ("A M", None)
    wrong = cli("user", "edit", "anne@cabinet.example", "--language", "klingon")
    assert wrong.exit_code == 1 and "Unknown language 'klingon'" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    nobody = cli("user", "edit", "bob@cabinet.example", "--name", "Bob")
    assert nobody.exit_code == 1 and "No user bob@cabinet.example" in nobody.stderr
    nothing = cli("user", "edit", "anne@cabinet.example")
    assert nothing.exit_code == 2 and "--name or --language" in nothing.stderr

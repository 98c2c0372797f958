"""The CSV importer: one fixture file per format and per bad input, real SQLite files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import NOW
from monthlydocs import clients, importing, templates
from monthlydocs.errors import ImportFileError, InvalidPhone
from monthlydocs.importing import Outcome, import_clients, parse_table, safe_cell

CSV = Path(__file__).parent / "fixtures" / "csv"


def run(db, name, region="FR", **options):
    return import_clients(db, CSV / name, NOW, region=region, **options)


def stored(db):
    rows = db.query("SELECT name, email, phone, language FROM clients ORDER BY email")
    return [tuple(row.values()) for row in rows]


def events(db, action):
    return db.execute("SELECT count(*) FROM events WHERE action = ?", [action]).fetchone()[0]


# --- Formats ---------------------------------------------------------------------------

FORMATS = [
    # fixture, firm region, encoding, delimiter, header line, clients stored, rejected
    ("utf8_bom.csv", "FR", "utf-8-sig", ",", 1, [
        ("Café Müller", "cafe@muller.example", "+33612345678", None),
        ("Señora Núñez", "nunez@example.es", "+34612345678", None),
    ], []),
    ("cp1252_accents.csv", "FR", "cp1252", ",", 1, [
        ("Crêperie Ça Va", "ca@va.example", None, None),
        ("Straße & Söhne", "strasse@example.de", None, None),
    ], []),
    ("utf16_tab.txt", "FR", "utf-16", "\t", 1, [
        ("Œuvre Ltd", "oeuvre@example.fr", "+33612345678", None),
        ("Zoë Ångström AB", "zoe@example.se", "+46701234567", None),
    ], []),
    ("semicolon.csv", "FR", "utf-8", ";", 1, [
        ("Dupont SARL", "contact@dupont.example", "+33142685300", None),
        ("Martin & Fils", "martin@fils.example", "+33612345678", None),
    ], []),
    ("tab.tsv", "FR", "utf-8", "\t", 1, [
        ("Dupont SARL", "contact@dupont.example", "+33142685300", None),
        ("Martin, Fils & Co", "martin@fils.example", "+33612345678", None),
    ], []),
    ("crlf.csv", "FR", "utf-8", ",", 1, [
        ("Dupont SARL", "contact@dupont.example", "+33142685300", None),
        ("Martin SAS", "martin@example.fr", "+33612345678", None),
    ], []),
    ("quoted_multiline.csv", "FR", "utf-8", ",", 1, [
        ("O'Brien Ltd", "obrien@example.com", None, None),
        ("Smith, Jones & Co", "office@smithjones.example", None, None),
    ], [(5, "invalid email 'not-an-email'")]),
    ("title_lines.csv", "FR", "utf-8", ",", 3, [
        ("Dupont SARL", "contact@dupont.example", "+33142685300", None),
    ], [(5, "no email")]),
    ("sep_hint.csv", "FR", "utf-8", ";", 2, [
        ("Dupont, Durand et Associés", "contact@dda.example", None, None),
    ], []),
    ("mac_roman.csv", "FR", "mac_roman", ";", 1, [
        ("Crêperie Lefèvre", "lefevre@example.fr", None, None),
    ], []),
    ("cp850.csv", "DE", "cp850", ";", 1, [
        ("Bäckerei Müller", "mueller@example.de", None, None),
    ], []),
    # Spreadsheets in the five languages.
    ("english.csv", "GB", "utf-8", ",", 1, [
        ("Acme Ltd", "accounts@acme.example", "+447911123456", "en"),
        ("Blue Sky Bakery", "hello@bluesky.example", "+447911123457", "fr"),
    ], []),
    ("french_excel.csv", "FR", "cp1252", ";", 1, [
        ("Crêperie Lefèvre", "helene@creperie.example", "+33612345678", "fr"),
        ("Jürgen Straße", "jurgen@strasse.example", "+4915123456789", "de"),
    ], []),
    ("german_vorname_name.csv", "DE", "utf-8", ";", 1, [
        ("Hans Becker", "hans@becker.example", "+4915123456789", "de"),
    ], []),
    ("spanish.csv", "ES", "cp1252", ";", 1, [
        ("Asesoría Núñez SL", "info@nunez.example", "+34612345678", "es"),
        ("Talleres Peña", "pena@talleres.example", "+34699123456", "en"),
    ], []),
    ("spanish_nombre_apellidos.csv", "ES", "utf-8", ";", 1, [
        ("Lucía García López", "lucia@example.es", "+34612345678", "es"),
    ], []),
    ("indonesian.csv", "ID", "utf-8", ";", 1, [
        ("PT Maju Jaya", "admin@majujaya.example", "+6281234567890", "id"),
        ("CV Sinar Terang", "sinar@terang.example", "+6281298765432", "en"),
    ], []),
    # Exports from accounting and contact tools, with the columns they really write.
    ("xero.csv", "GB", "utf-8", ",", 1, [
        ("Harbour Cafe Ltd", "accounts@harbourcafe.example", "+447911123456", None),
        ("Liam Patel", "liam@patel.example", "+442071234568", None),
    ], []),
    ("quickbooks.csv", "US", "utf-8", ",", 1, [
        ("Bob's Garage LLC", "bob@garage.example", "+14155552673", None),
        ("Jane Doe", "jane@doe.example", "+14155552671", None),
    ], []),
    # Google Contacts: typed phone pairs ("Phone 2 - Type" = Mobile), mobile preferred.
    ("google.csv", "FR", "utf-8", ",", 1, [
        ("Anna Schmidt", "anna@schmidt.example", "+4915123456789", None),
        ("Ruiz Asesores", "carlos@ruiz.example", "+34612345678", None),
        ("Claire Petit", "claire@petit.example", "+33612345678", None),
        ("Hélène Roux", "helene@roux.example", "+33698765432", None),
        ("Jonas Weber", "jonas@weber.example", "+49301234567", None),
    ], []),
    # Its newer export: "Phone N - Label", localised labels.
    ("google_labels.csv", "ID", "utf-8", ",", 1, [
        ("PT Maju Jaya", "budi@majujaya.example", "+6281234567890", None),
        ("García Abogados", "lucia@garcia.example", "+34612345678", None),
        ("Sari Wijaya", "sari@wijaya.example", "+6281298765432", None),
    ], []),
    ("outlook.csv", "FR", "utf-8", ",", 1, [
        ("Curie Conseil", "marie@curie.example", "+33698765432", None),
        ("Paul Martin", "paul.martin@example.fr", "+33142685301", None),
    ], []),
    ("hubspot.csv", "FR", "utf-8", ",", 1, [
        ("García Abogados", "lucia@garcia.example", "+34612345678", "es"),
        ("Tom Becker", "tom@becker.example", "+49301234567", "de"),
    ], []),
    ("sage.csv", "FR", "cp1252", ";", 1, [
        ("Boulangerie Émile", "emile@boulangerie.example", "+33612345678", None),
    ], []),
    ("datev.csv", "DE", "cp1252", ";", 2, [
        ("Bäckerei Müller GmbH", "info@baeckerei-mueller.example", "+4915123456789",
         None),
        ("Schröder & Söhne KG", "kontakt@schroeder.example", "+49307654321", None),
    ], []),
]


@pytest.mark.parametrize(
    "fixture, region, encoding, delimiter, header_line, expected, rejected",
    FORMATS,
    ids=[case[0] for case in FORMATS],
)
def test_each_format_is_read_and_imported(
    db, fixture, region, encoding, delimiter, header_line, expected, rejected
):
    result = run(db, fixture, region)

    assert (result.encoding, result.delimiter) == (encoding, delimiter)
    assert result.header_line == header_line
    assert stored(db) == sorted(expected, key=lambda client: client[1])
    assert [(row.line, row.reason) for row in result.rejected] == rejected
    assert result.counts[Outcome.CREATED] == len(expected)
    assert events(db, "client:created") == len(expected)


def test_quoted_cells_keep_commas_quotes_and_line_breaks(db):
    run(db, "quoted_multiline.csv")

    notes = db.execute(
        "SELECT notes FROM clients WHERE email = 'office@smithjones.example'"
    ).fetchone()[0]
    assert notes == 'Said "call me first"\nsecond line, with a comma'


def test_the_mapping_is_reported_in_file_order(db):
    result = run(db, "xero.csv", "GB")

    assert result.mapping == [
        ("*ContactName", "company"),
        ("EmailAddress", "email"),
        ("FirstName", "first_name"),
        ("LastName", "last_name"),
        ("PhoneNumber", "phone"),
        ("MobileNumber", "mobile"),
    ]
    assert result.ignored == ["AccountNumber", "SkypeName", "BankAccountName"]


def test_typed_phone_columns_are_reported_and_yield_to_map(db):
    result = run(db, "google.csv", dry_run=True)

    assert result.typed_phones == [
        ("Phone 1 - Type", "Phone 1 - Value"),
        ("Phone 2 - Type", "Phone 2 - Value"),
    ]
    assert stored(db) == []
    # A column the person maps is theirs: here the first number, whatever its type.
    run(db, "google.csv", overrides={"Phone 1 - Value": "mobile"})
    assert clients.by_email(db, "carlos@ruiz.example")["phone"] == "+34912345678"


@pytest.mark.parametrize(
    "label, mobile",
    [
        ("Mobile", True),
        ("* Mobile", True),
        ("Mobil", True),
        ("Portable", True),
        ("Móvil", True),
        ("Ponsel", True),
        ("Seluler", True),
        ("Work", False),
        ("* Home", False),
        ("Main", False),
        ("", False),
    ],
)
def test_mobile_phone_labels(label, mobile):
    assert importing.is_mobile_label(label) is mobile


def test_a_person_without_company_takes_first_and_last_name(db):
    run(db, "outlook.csv")

    assert clients.by_email(db, "paul.martin@example.fr")["notes"] == (
        "Pays en fin de mois"
    )


@pytest.mark.parametrize(
    "header, field",
    [
        ("E-mail 2 Address", "email"),
        ("E-mail 1 - Type", None),
        ("Phone 1 - Type", None),
        ("Adresse de messagerie", "email"),
        ("E-Mail-Adresse", "email"),
        ("Téléphone mobile", "mobile"),
        ("Mobiltelefon", "mobile"),
        ("Nomor WhatsApp", "mobile"),
        ("No. Telp", "phone"),
        ("Name (Adressatentyp Unternehmen)", "company"),
        ("Vorname (Adressatentyp natürl. Person)", "first_name"),
        ("Bemerkung (Telefon)", None),
        ("  LANGUE PRÉFÉRÉE ", "language"),
        ("Manager's Name", None),
        ("BankAccountName", None),
    ],
)
def test_header_words_fold_case_accents_and_punctuation(header, field):
    assert importing.guess_field(header) == field


def test_utf16_without_a_bom_is_recognised():
    text = "Name\tEmail\nAcme\tacme@example.com\n"

    table = parse_table(text.encode("utf-16-le"), "x.txt")

    assert (table.encoding, table.delimiter) == ("utf-16-le", "\t")
    assert table.rows == [(2, ["Acme", "acme@example.com"])]


# --- Phone numbers Excel has mangled ---------------------------------------------------


@pytest.mark.parametrize(
    "email, phone, reason",
    [
        ("plus@example.com", "+33612345678", None),
        ("zero@example.com", "+33612345678", None),
        ("sci@example.com", "+33612345678", None),
        ("comma@example.com", "+33612345678", None),
        ("foreign@example.com", "+4915123456789", None),
        ("formatted@example.com", "+33612345678", None),
        ("rounded@example.com", None,
         "phone number '3.36123E+11' was rounded by Excel (scientific notation) and "
         "its last digits are lost: format the column as text and type the number "
         "again"),
        ("short@example.com", None,
         "invalid phone number '12': not a number for FR nor one with a country code;"
         " write it like +33 6 12 34 56 78"),
    ],
)
def test_mangled_phone_numbers_are_recovered_or_rejected(db, email, phone, reason):
    result = run(db, "mangled_phones.csv")

    client = clients.by_email(db, email)
    if reason is None:
        assert client["phone"] == phone
    else:
        assert client is None
        assert reason in [row.reason for row in result.rejected]


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("6281234567890", "ID", "+6281234567890"),
        ("81234567890", "ID", "+6281234567890"),
        ("'+33 6 12 34 56 78", "FR", "+33612345678"),
        ("34612345678", "ES", "+34612345678"),
        ("", "FR", None),
    ],
)
def test_recover_phone(raw, region, expected):
    assert importing.recover_phone(raw, region) == expected


def test_recover_phone_names_the_value():
    with pytest.raises(InvalidPhone, match=re.escape("'=1+2'")):
        importing.recover_phone("=1+2", "FR")


# --- Rejected rows ---------------------------------------------------------------------


def test_valid_rows_are_imported_and_the_others_listed_with_reasons(db):
    result = run(db, "rejected_rows.csv")

    assert [(row.line, row.reason) for row in result.rejected] == [
        (3, "invalid email 'x'"),
        (4, "no name"),
        (5, "no email"),
        (6, "unknown language 'klingon' (use en, fr, de, es, id)"),
        (7, "duplicate email GOOD@example.com (already on line 2)"),
        (8, "invalid phone number '12345': not a number for FR nor one with a country "
            "code; write it like +33 6 12 34 56 78"),
    ]
    assert stored(db) == [("Good Client", "good@example.com", "+33612345678", "fr")]
    assert result.counts == {
        Outcome.CREATED: 1, Outcome.UPDATED: 0, Outcome.UNCHANGED: 0,
        Outcome.REJECTED: 6,
    }


# --- Files that cannot be imported -----------------------------------------------------


@pytest.mark.parametrize(
    "fixture, message",
    [
        ("empty.csv", "empty.csv is empty: export the client list again"),
        ("blank.csv", "blank.csv is empty: export the client list again"),
        ("binary.csv", "binary.csv is not a text file: export the client list as CSV "
         "and import that"),
        ("workbook.xlsx", "workbook.xlsx is an Excel workbook, not a CSV file: open it "
         "in Excel, save it with File > Save As > CSV UTF-8, then import that file"),
        ("undecodable.csv", "undecodable.csv is not in an encoding the importer knows "
         "(UTF-8, UTF-16, Windows-1252, Mac Roman, DOS 850): save it again as CSV "
         "UTF-8"),
        ("header_only.csv", "header_only.csv has a header on line 1 but no client rows "
         "under it"),
        ("no_email_column.csv", "No email column found in no_email_column.csv. Columns "
         "found: 'Name', 'Phone', 'City'. Say which column holds the email address "
         "with --map, for example --map 'Courriel=email'"),
        ("no_name_column.csv", "No name column found in no_name_column.csv. Columns "
         "found: 'Email', 'Phone'. Say which column holds the client's name with "
         "--map, for example --map 'Raison sociale=name'"),
        ("missing.csv", "Cannot read "),
    ],
)
def test_a_file_that_cannot_be_imported_is_one_error_and_writes_nothing(
    db, fixture, message
):
    with pytest.raises(ImportFileError) as raised:
        run(db, fixture)

    assert message in str(raised.value)
    assert db.execute("SELECT count(*) FROM clients").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0


# --- Formulas --------------------------------------------------------------------------


def test_formula_cells_are_stored_as_the_text_typed(db):
    run(db, "formula_cells.csv")

    rows = {
        row["email"]: (row["name"], row["phone"], row["notes"])
        for row in db.query("SELECT * FROM clients")
    }
    assert rows == {
        "formula@example.com": (
            '=HYPERLINK("http://evil.example","Click me")', "+33612345678",
            "@SUM(A1:A2)",
        ),
        "minus@example.com": ("-Minus Corp", None, "=1+2"),
        "+plus@example.com": ("+Plus Ltd", None, "-5"),
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("+33612345678", "'+33612345678"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Dupont SARL", "Dupont SARL"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_safe_cell_keeps_spreadsheets_from_running_a_value(text, expected):
    assert safe_cell(text) == expected


# --- Re-importing ----------------------------------------------------------------------


def test_reimporting_updates_by_email_instead_of_duplicating(db):
    first = run(db, "reimport_first.csv")
    second = run(db, "reimport_second.csv")

    assert [row.outcome for row in first.rows] == [Outcome.CREATED] * 3
    assert [(row.line, row.outcome, row.changed) for row in second.rows] == [
        (2, Outcome.UNCHANGED, ()),
        (3, Outcome.UPDATED, ("phone",)),
        (4, Outcome.UNCHANGED, ()),
        (5, Outcome.CREATED, ()),
    ]
    assert stored(db) == [
        ("Alpha SARL", "alpha@example.com", "+33612345678", "fr"),
        ("Beta GmbH", "beta@example.com", "+4915198765432", "de"),
        ("Delta BV", "delta@example.com", None, "en"),
        # An empty cell keeps what is on record.
        ("Gamma SL", "gamma@example.com", None, "es"),
    ]
    assert events(db, "client:created") == 4
    assert events(db, "client:updated") == 1


def test_reimport_matches_clients_added_by_hand_ignoring_case(db):
    clients.add_client(
        db, clients.ClientInput("Alpha", "Alpha@Example.com"), NOW, region="FR"
    )

    result = run(db, "reimport_first.csv")

    assert [row.outcome for row in result.rows] == [
        Outcome.UPDATED, Outcome.CREATED, Outcome.CREATED,
    ]
    assert result.rows[0].changed == ("name", "phone", "language")
    assert clients.by_email(db, "alpha@example.com")["email"] == "Alpha@example.com"


def test_dry_run_reports_the_outcome_and_writes_nothing(db):
    run(db, "reimport_first.csv")
    before = db.execute("SELECT count(*) FROM events").fetchone()[0]

    result = run(db, "reimport_second.csv", dry_run=True)

    assert result.dry_run
    assert [row.outcome for row in result.rows] == [
        Outcome.UNCHANGED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.CREATED,
    ]
    assert clients.by_email(db, "delta@example.com") is None
    assert clients.by_email(db, "beta@example.com")["phone"] == "+4915123456789"
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == before


def test_imported_clients_are_assigned_to_the_template(db):
    template_id, _ = templates.save_template(db, "monthly", NOW, name="Monthly")

    first = run(db, "reimport_first.csv", template_id=template_id)
    again = run(db, "reimport_second.csv", template_id=template_id)

    assert (first.assigned, again.assigned) == (3, 1)
    assigned = db.execute(
        "SELECT count(*) FROM assignments WHERE template_id = ?", [template_id]
    ).fetchone()[0]
    assert assigned == 4


# --- Overriding the guess --------------------------------------------------------------


def test_map_overrides_the_guess(db):
    overrides = importing.parse_overrides(["Contact=email", "tel=ignore"])

    result = run(db, "override_columns.csv", overrides=overrides)

    assert result.mapping == [("Client", "name"), ("Contact", "email")]
    assert stored(db) == [("Acme", "acme@example.com", None, None)]


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["Contact"], "--map 'Contact' must look like COLUMN=FIELD"),
        (["Contact=mail"], "--map 'Contact=mail': 'mail' is not a field; use one of "
         "name, first_name, last_name, company, email, phone, mobile, language, notes, "
         "ignore"),
        (["=email"], "--map '=email' must look like COLUMN=FIELD"),
    ],
)
def test_bad_map_options_say_what_is_expected(pairs, message):
    with pytest.raises(ImportFileError, match=re.escape(message)):
        importing.parse_overrides(pairs)


def test_map_naming_a_missing_column_lists_the_columns(db):
    with pytest.raises(ImportFileError) as raised:
        run(db, "override_columns.csv", overrides={"Courriel": "email"})

    assert str(raised.value) == (
        "--map names a column 'Courriel' that override_columns.csv does not have. "
        "Columns found: 'Client', 'Contact', 'Tel'"
    )


# --- Performance -----------------------------------------------------------------------


def test_a_large_file_costs_a_fixed_number_of_statements(db, tmp_path):
    """Bulk reads and writes: the statement count must not grow with the rows."""
    path = tmp_path / "big.csv"
    lines = ["Name,Email,Phone,Language"] + [
        f"Client {i},client{i}@example.com,+336{i:08d},fr" for i in range(2_000)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    statements = []
    db.conn.set_trace_callback(statements.append)
    try:
        result = import_clients(db, path, NOW, region="FR")
    finally:
        db.conn.set_trace_callback(None)

    assert result.counts[Outcome.CREATED] == 2_000
    assert events(db, "client:created") == 2_000
    # executemany shows each row's INSERT; reads must not repeat per row.
    reads = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert len(reads) < 10, reads[:20]


# --- The command -----------------------------------------------------------------------


def test_cli_dry_run_shows_mapping_and_outcome(cli, settings):
    result = cli("client", "import", str(CSV / "semicolon.csv"), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "semicolon.csv: UTF-8, semicolon-separated, header on line 1" in result.stdout
    assert re.search(r"Email\s+email", result.stdout)
    assert re.search(r"created\s+2", result.stdout)
    assert "Dry run: nothing was written" in result.stdout
    assert "0 clients" in cli("client", "list").stdout


def test_cli_exits_1_and_lists_rejected_rows(cli):
    result = cli("client", "import", str(CSV / "rejected_rows.csv"))

    assert result.exit_code == 1
    assert re.search(r"3\s+invalid email 'x'", result.stdout)
    assert "6 rows rejected" in result.stderr
    assert "Good Client" in cli("client", "list").stdout


def test_cli_map_and_template(cli):
    cli("template", "add", "monthly", "--name", "Monthly")

    result = cli(
        "client", "import", str(CSV / "override_columns.csv"),
        "--map", "Contact=email", "--template", "monthly",
    )

    assert result.exit_code == 0, result.output
    assert "Template monthly: 1 client newly assigned" in result.stdout
    assert "monthly" in cli("client", "list").stdout


def test_cli_file_error_is_one_line(cli):
    result = cli("client", "import", str(CSV / "no_email_column.csv"))

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No email column found in no_email_column.csv")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_dry_run_names_the_typed_phone_columns(cli):
    result = cli("client", "import", str(CSV / "google.csv"), "--dry-run")

    assert result.exit_code == 0, result.output
    assert (
        "Phone numbers read by their type, mobile first: Phone 1 - Type / "
        "Phone 1 - Value, Phone 2 - Type / Phone 2 - Value"
    ) in result.stdout
    ignored = next(
        line for line in result.stdout.splitlines() if line.startswith("Ignored")
    )
    assert "Phone" not in ignored and "Group Membership" in ignored

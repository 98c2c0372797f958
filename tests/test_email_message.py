"""The email writer and the message renderer against the standard library and Jinja.

Emails are written straight to bytes (not through the ``email`` package's objects), and
message templates get their gettext functions directly from the catalog: both for speed.
These tests hold them to what the standard ways produce.
"""

from __future__ import annotations

import email
import email.policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage

import pytest

from monthlydocs.channels.email import SmtpEmailBackend, build_message
from monthlydocs.config import settings_from_dict
from monthlydocs.errors import PermanentDeliveryError
from monthlydocs.messages import Composed, compose, render_sms

FIRM = {"name": 'Cabinet "Dupont", Fils & Cie', "email": "office@dupont.example"}
FROM_NAME = "Cabinet Dupont – Expertise comptable"

# A text part with what trips up writers: a line that is only a dot, one starting with
# "From ", a CRLF pair from a browser form, trailing spaces, tabs, a long line, emoji.
AWKWARD_TEXT = (
    "Line one\n.\n..two dots\nFrom here on\r\nnote from a form  \n"
    "\tindented\t\n" + "long " * 40 + "\nthe end 😀\n"
)

# (language, client name, subject, text, html)
CASES = [
    (
        "fr",
        "Élodie Martin",
        "Rappel : vos documents pour décembre 2026",
        "Bonjour Élodie,\n\nIl manque encore 2 documents.\n",
        "<p>Bonjour Élodie,</p>",
    ),
    (
        "de",
        'Jürgen "Jo" Groß, GmbH',
        "Erinnerung: Ihre Unterlagen für Dezember 2026",
        "Hallo Jürgen,\n\nEs fehlen noch Unterlagen.\n",
        "<p>Hallo Jürgen &amp; Co,</p>\n",
    ),
    (
        "es",
        "Peña, José",
        "Último recordatorio: sus documentos de diciembre de 2026",
        "Hola José,\r\nuna nota de un formulario\r\rcon un CR suelto\n",
        "<p>¿Hola José?</p>",
    ),
    (
        "id",
        "Budi Santoso",
        "Pengingat: dokumen Anda untuk Desember 2026",
        AWKWARD_TEXT,
        "<p>Halo Budi</p>\n<p>" + "panjang " * 30 + "</p>",
    ),
    (
        "en",
        "Zoë 🎉 O'Brien",
        "Overdue: your documents for Q4 2026 ✓",
        "Hello Zoë 🎉,\n",
        '<p style="color:#b42318">Hello Zoë 🎉</p>',
    ),
    (
        "en",
        "Ada Lovelace",
        "Reminder: your documents =?utf-8?q?for?= December 2026",
        "Hello Ada,\n",
        "<p>Hello Ada,</p>",
    ),
]


def _settings(**email_settings):
    return settings_from_dict(
        {
            "firm": FIRM,
            "email": {
                "from_address": "office@dupont.example",
                "from_name": FROM_NAME,
                "reply_to": "jean@dupont.example",
                **email_settings,
            },
        },
        environ={},
    )


def _standard(settings, name, address, composed, language) -> bytes:
    """The same message made the standard way: EmailMessage and the default policy."""
    message = EmailMessage(policy=email.policy.default)
    message["From"] = Address(settings.from_name, addr_spec=settings.from_address)
    message["To"] = Address(name, addr_spec=address)
    message["Reply-To"] = Address(settings.firm.name, addr_spec=settings.reply_to)
    message["Subject"] = composed.subject
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(composed.text, cte="quoted-printable")
    message.add_alternative(composed.html, subtype="html", cte="quoted-printable")
    message["Content-Language"] = language  # after set_content, which drops Content-*
    return message.as_bytes(policy=email.policy.SMTP)


def _parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def _lines(text: str) -> str:
    """Line ends as in Python text (a lone CR counts as one, as for the standard writer)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _well_formed(data: bytes) -> None:
    """CRLF line ends only, lines of at most 78 characters, no defect when parsed."""
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert all(not part.defects for part in _parse(data).walk())


@pytest.mark.parametrize(("language", "name", "subject", "text", "html"), CASES)
def test_written_bytes_read_back_as_the_standard_message(
    smtp_server, language, name, subject, text, html
):
    settings = _settings(backend="smtp", host="127.0.0.1", port=smtp_server.port)
    address = f"client.{language}@example.com"
    composed = Composed(subject=subject, text=text, html=html)
    fast = build_message(settings, name, address, composed, language)
    with SmtpEmailBackend(settings) as backend:
        assert backend.send(fast) == fast.message_id
    [received] = smtp_server.messages  # after the server undid smtplib's dot-stuffing
    assert smtp_server.envelopes == [("office@dupont.example", [address])]
    _well_formed(received)

    got, want = (
        _parse(received),
        _parse(_standard(settings, name, address, composed, language)),
    )
    for field in ("From", "To", "Reply-To"):
        assert got[field].addresses == want[field].addresses, field
    for field in ("Auto-Submitted", "Content-Language"):
        assert str(got[field]) == str(want[field]), field
    assert str(got["Subject"]) == subject
    if "=?" not in subject:  # the standard writer leaves that one as an encoded word
        assert str(want["Subject"]) == subject
    assert got["To"].addresses[0].display_name == name
    assert got["Message-ID"] == fast.message_id
    assert got["Date"].datetime is not None
    assert got.get_content_type() == "multipart/alternative"
    for subtype, sent in (("plain", text), ("html", html)):
        part, standard = got.get_body(subtype), want.get_body(subtype)
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert _lines(part.get_content()) == _lines(sent)
        assert _lines(part.get_content()).rstrip("\n") == _lines(
            standard.get_content()
        ).rstrip("\n")


@pytest.mark.parametrize(
    "name",
    [
        "株式会社 山田太郎商事 経理部 御中 山田太郎様 株式会社 山田太郎商事",
        "Élodie Martin-Dupont de la Fontaine et de la Rivière, née Très-Longue-Nom",
        "A very long plain name, with commas, that cannot fit on one line at all, no",
    ],
)
def test_long_names_are_folded_within_78_characters(name):
    composed = Composed(subject="Rappel " * 20 + "été", text="x\n", html="<p>x</p>")
    fast = build_message(_settings(), name, "client@example.com", composed, "fr")
    _well_formed(fast.data)
    raw = email.message_from_bytes(fast.data, policy=email.policy.compat32)
    # Read as RFC 2047 says (white space between encoded words is not part of the text).
    assert str(make_header(decode_header(raw["To"]))).replace("\r\n", "") in (
        f"{name} <client@example.com>",
        f'"{name}" <client@example.com>',
    )
    assert str(_parse(fast.data)["Subject"]) == "Rappel " * 20 + "été"


def test_an_address_with_accented_letters_is_written_as_utf8():
    composed = Composed(subject="Hallo", text="x\n", html="<p>x</p>")
    fast = build_message(_settings(), "Jörg", "jörg@müller.example", composed, "de")
    assert fast.recipients == ("jörg@müller.example",)
    # An internationalized message (RFC 6532) is UTF-8 text throughout.
    parsed = email.message_from_string(
        fast.data.decode("utf-8"), policy=email.policy.SMTPUTF8
    )
    assert all(not part.defects for part in parsed.walk())
    [address] = parsed["To"].addresses
    assert (address.display_name, address.addr_spec) == ("Jörg", "jörg@müller.example")


@pytest.mark.parametrize(
    "address", ["a@example.com\r\nBcc: everyone@example.com", "a@example.com\nX: y"]
)
def test_an_address_cannot_add_headers(address):
    composed = Composed(subject="Hello", text="x\n", html="<p>x</p>")
    with pytest.raises(PermanentDeliveryError, match="Invalid email address"):
        build_message(_settings(), "Ann", address, composed, "en")


def test_file_backend_writes_the_same_message_with_unix_line_ends(tmp_path):
    from monthlydocs.channels.email import FileEmailBackend

    language, name, subject, text, html = CASES[3]
    fast = build_message(
        _settings(), name, "b@example.com", Composed(subject, text, html), language
    )
    with FileEmailBackend(tmp_path) as backend:
        path = backend.send(fast)
    data = open(path, "rb").read()
    assert b"\r" not in data
    saved = _parse(data)
    assert saved["Message-ID"] == fast.message_id
    assert saved.get_body("plain").get_content() == _lines(text)


def _reminder_context(name: str) -> dict:
    checklist = {
        "template_name": "TVA <mensuelle>",
        "period_label": "décembre 2026",
        "due_label": "10 décembre 2026",
        "overdue": False,
        "link": "https://portal.example/c/abc?x=1&y=2",
        "again": [{"name": "Relevé", "note": "Page 2 & 3 manquent"}],
        "to_send": [
            {"name": "Factures", "optional": False, "description": "Ventes <100 %"},
            {"name": "Notes", "optional": True, "description": ""},
        ],
        "received": [{"name": "Banque"}],
    }
    return {
        "language": "fr",
        "firm": {
            "name": FIRM["name"],
            "email": FIRM["email"],
            "phone": "",
            "signature": "Jean & l'équipe",
        },
        "client": {"name": name},
        "checklists": [checklist],
        "step": 2,
        "last": True,
        "overdue": False,
        "link": checklist["link"],
        "missing_count": 3,
    }


@pytest.mark.parametrize("language", ["en", "fr", "de", "es", "id"])
def test_templates_render_as_with_jinjas_own_gettext(language):
    """The direct gettext functions give what Jinja's newstyle gettext gives: the same
    translations, values escaped in HTML and not in text, plurals with their number."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from monthlydocs.i18n import translations
    from monthlydocs.messages import TEMPLATE_DIR

    def stock(html: bool) -> Environment:
        env = Environment(
            loader=FileSystemLoader(str(TEMPLATE_DIR)),
            autoescape=html,
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(translations(language), newstyle=True)
        return env

    context = {**_reminder_context('<b>Tom & "Jerry"</b>'), "language": language}
    composed = compose("reminder", language, context)
    html = stock(True).get_template("reminder/body.html").render(context)
    text = stock(False).get_template("reminder/body.txt").render(context)
    subject = stock(False).get_template("reminder/subject.txt").render(context)
    sms = stock(False).get_template("reminder/sms.txt").render(context)
    assert composed.html == html
    assert composed.text == text.strip() + "\n"
    assert composed.subject == " ".join(subject.split())
    assert render_sms("reminder", language, context) == " ".join(sms.split())
    assert "&lt;b&gt;Tom &amp; &#34;Jerry&#34;&lt;/b&gt;" in composed.html
    assert '<b>Tom & "Jerry"</b>' in composed.text
    assert " 3 " in render_sms("reminder", language, context)
    if language != "en":
        english = compose("reminder", "en", {**context, "language": "en"})
        assert composed.text != english.text


class _Catalog:
    """Translations with characters that HTML escaping would change."""

    def gettext(self, text: str) -> str:
        return {"Hi %(name)s": "<b>Salut</b> %(name)s & 100%%", "Plain": "l'été"}.get(
            text, text
        )

    def ngettext(self, singular: str, plural: str, num: int) -> str:
        return "%(num)d <i>pièce</i>" if num == 1 else "%(num)d <i>pièces</i> & %(x)s"


@pytest.mark.parametrize("html", [True, False])
@pytest.mark.parametrize(
    "source",
    [
        '{{ _("Hi %(name)s", name=who) }}',
        '{{ gettext("Plain") }} {{ _("Untranslated %%") }}',
        '{{ ngettext("one", "many", n, x=who) }}|{{ ngettext("one", "many", 1) }}',
    ],
)
def test_gettext_functions_behave_as_jinjas_newstyle_gettext(source, html):
    from jinja2 import Environment

    from monthlydocs.messages import _gettext_functions

    catalog = _Catalog()
    stock = Environment(autoescape=html, extensions=["jinja2.ext.i18n"])
    stock.install_gettext_callables(catalog.gettext, catalog.ngettext, newstyle=True)
    direct = Environment(autoescape=html, extensions=["jinja2.ext.i18n"])
    direct.globals.update(_gettext_functions(catalog))
    values = {"who": '<Tom & "Jerry">', "n": 3}
    expected = stock.from_string(source).render(values)
    assert direct.from_string(source).render(values) == expected

"""Every string a person reads is translated in every language, and compiled.

The strings are extracted from the package exactly as `babel.cfg` says; a catalog that
lacks one, leaves one empty, marks one fuzzy, skips a plural form or drops a
placeholder fails here. So does a .mo file older than its .po.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from monthlydocs.config import LANGUAGES
from monthlydocs.i18n import LOCALE_DIR, translations

ROOT = Path(__file__).resolve().parent.parent
TRANSLATED = [code for code in LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
# The keywords babel.cfg's header gives: i18n.gettext takes the language first.
KEYWORDS = ["-k", "_", "-k", "_l", "-k", "gettext:2", "-k", "ngettext:1,2"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Catalog:
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    CommandLineInterface().run([
        "pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"),
        "--no-default-keywords", *KEYWORDS, "-o", str(pot), str(ROOT),
    ])
    with pot.open("rb") as handle:
        catalog = read_po(handle)
    assert len([m for m in catalog if m.id]) > 80  # the extraction found the package
    return catalog


def _catalog(code: str) -> Catalog:
    with (LOCALE_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=code)


@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_is_complete(template, code):
    catalog = _catalog(code)
    expected_plurals = Catalog(locale=code).num_plurals
    assert catalog.num_plurals == expected_plurals, "Plural-Forms differ from CLDR"
    problems = []
    for message in template:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        found = catalog.get(message.id)
        if found is None:
            problems.append(f"missing: {key!r}")
            continue
        if found.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        strings = found.string if isinstance(found.string, tuple) else (found.string,)
        if isinstance(message.id, tuple) and len(strings) != expected_plurals:
            problems.append(f"{len(strings)} plural forms instead of "
                            f"{expected_plurals}: {key!r}")
        if any(not text.strip() for text in strings):
            problems.append(f"empty (or an empty plural form): {key!r}")
        wanted = set(PLACEHOLDER.findall(key))
        for text in strings:
            if set(PLACEHOLDER.findall(text)) != wanted and strings != ("",):
                # A one-form language may leave %(num)d out of a sentence only if the
                # English singular also has it: both keep every placeholder here.
                problems.append(f"placeholders differ: {key!r} -> {text!r}")
    assert not problems, f"{code}:\n" + "\n".join(problems)


@pytest.mark.parametrize("code", TRANSLATED)
def test_no_fuzzy_header_or_obsolete_entries(code):
    text = (LOCALE_DIR / code / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    assert "#, fuzzy" not in text
    assert "\n#~ " not in text


@pytest.mark.parametrize("code", TRANSLATED)
def test_mo_is_compiled_from_the_current_po(code):
    mo_path = LOCALE_DIR / code / "LC_MESSAGES" / "messages.mo"
    assert mo_path.exists(), f"{mo_path.name} missing for {code}: run `make translations`"
    with mo_path.open("rb") as handle:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(handle) if m.id}
    source = {_key(m.id): _key(m.string) for m in _catalog(code) if m.id}
    stale = sorted(str(k) for k in source.keys() ^ compiled.keys())
    stale += sorted(str(k) for k in source if k in compiled and compiled[k] != source[k])
    assert not stale, f"{code}: .mo differs from .po, run `make translations`: {stale[:5]}"


def _key(value):
    return tuple(value) if isinstance(value, list | tuple) else value


def test_plurals_work_at_run_time_for_every_form():
    # fr and es have a third ("many") form in CLDR: 3 and 1 000 000 must not fall
    # back to English.
    singular, plural = "%(num)d file received, thank you.", \
        "%(num)d files received, thank you."
    for code in TRANSLATED:
        for n in (1, 3, 1_000_000):
            text = translations(code).ngettext(singular, plural, n) % {"num": n}
            assert "received" not in text, (code, n, text)
    assert translations("fr").ngettext(singular, plural, 3) % {"num": 3} == (
        "3 fichiers reçus, merci.")

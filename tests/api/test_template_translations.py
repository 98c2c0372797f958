"""The template resource carries the wording clients read in their language."""

from __future__ import annotations

from .conftest import assert_problem

FR = {"fr": {"name": "Déclaration de TVA"}}
SLOT_FR = {"fr": {"name": "Journal des ventes", "description": "Export de la caisse"}}


def test_translations_are_created_shown_and_kept_unless_replaced(api):
    body = {
        "slug": "vat",
        "name": "VAT return",
        "translations": FR,
        "slots": [
            {"name": "Sales ledger", "translations": SLOT_FR},
            {"name": "Purchase invoices"},
        ],
    }
    created = api.post("/templates", json=body).get_json()
    assert created["translations"] == FR
    assert [s["translations"] for s in created["slots"]] == [SLOT_FR, {}]
    assert api.get("/templates/vat").get_json() == created

    # A slot list without translations keeps those the slots have.
    kept = api.patch(
        "/templates/vat",
        json={"slots": [{"name": "Purchase invoices"}, {"name": "Sales ledger"}]},
    ).get_json()
    assert [s["translations"] for s in kept["slots"]] == [{}, SLOT_FR]
    assert kept["translations"] == FR

    # Given, they replace them; a blank text is left out.
    changed = api.patch(
        "/templates/vat",
        json={
            "translations": {"de": {"name": "Umsatzsteuer", "description": " "}},
            "slots": [{"name": "Sales ledger", "translations": {}}],
        },
    ).get_json()
    assert changed["translations"] == {"de": {"name": "Umsatzsteuer"}}
    assert [s["translations"] for s in changed["slots"]] == [{}]


def test_an_unknown_language_or_key_is_a_validation_problem(api):
    assert_problem(
        api.patch("/templates/monthly", json={"translations": {"it": {"name": "x"}}}),
        422,
        "validation",
        **{"#/translations/it": "must be one of"},
    )
    assert_problem(
        api.patch(
            "/templates/monthly",
            json={"slots": [{"name": "A", "translations": {"fr": {"title": "B"}}}]},
        ),
        422,
        "validation",
        **{"#/slots/0/translations/fr/title": "unknown field"},
    )
    assert api.get("/templates/monthly").get_json()["translations"] == {}

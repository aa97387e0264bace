"""Reading RxNorm-style drug names (analysis.drugs): pure functions, no database."""
from __future__ import annotations

import pytest

from analysis.drugs import Drug, parse_drug_name, resolve_drug

PARSED = {
    # name: (ingredient, strength, unit, dose form, long-acting, class)
    "oxycodone hydrochloride 10 MG Oral Tablet":
        ("oxycodone", 10.0, "MG", "Oral Tablet", False, "opioid_analgesic"),
    # Combination products: the opioid component decides (acetaminophen has no class).
    "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet":
        ("oxycodone", 5.0, "MG", "Oral Tablet", False, "opioid_analgesic"),
    # Patches: 0.025 MG/HR = 25 MCG/HR; a 72 HR system is long-acting.
    "72 HR Fentanyl 0.025 MG/HR Transdermal System":
        ("fentanyl", 25.0, "MCG/HR", "Transdermal System", True, "opioid_analgesic"),
    "fentanyl 0.025 MG/HR 72 HR Transdermal System":
        ("fentanyl", 25.0, "MCG/HR", "Transdermal System", True, "opioid_analgesic"),
    "12 HR Hydrocodone Bitartrate 10 MG Extended Release Oral Capsule":
        ("hydrocodone", 10.0, "MG", "Extended Release Oral Capsule", True, "opioid_analgesic"),
    "Oxycodone Hydrochloride 15 MG Oral Tablet [Roxicodone]":
        ("oxycodone", 15.0, "MG", "Oral Tablet", False, "opioid_analgesic"),
    # Methadone is long-acting whatever its form (CDC 2022).
    "Methadone Hydrochloride 10 MG Oral Tablet":
        ("methadone", 10.0, "MG", "Oral Tablet", True, "opioid_analgesic"),
    "Buprenorphine 8 MG / Naloxone 2 MG Sublingual Tablet":
        ("buprenorphine", 8.0, "MG", "Sublingual Tablet", False, "buprenorphine"),
    "Naloxone Hydrochloride 4 MG/ACTUAT Nasal Spray":
        ("naloxone", 4.0, "MG/ACTUAT", "Nasal Spray", False, "naloxone"),
    "morphine sulfate 2 MG/ML Oral Solution":
        ("morphine", 2.0, "MG/ML", "Oral Solution", False, "opioid_analgesic"),
    "Alprazolam 0.5 MG Oral Tablet":
        ("alprazolam", 0.5, "MG", "Oral Tablet", False, "benzodiazepine"),
    # Readable but not in the reference: loaded as unmapped, shown on the Data quality page.
    "Ibuprofen 200 MG Oral Tablet":
        ("ibuprofen", 200.0, "MG", "Oral Tablet", False, None),
}


@pytest.mark.parametrize("name", PARSED)
def test_parses_rxnorm_style_names(name):
    d = parse_drug_name(name)
    assert d.error is None
    assert (d.ingredient, d.strength, d.strength_unit, d.dose_form, d.long_acting, d.drug_class) == PARSED[name]


@pytest.mark.parametrize("name, message", [
    ("", "drug_name is blank"),
    ("Tylenol", "cannot read ingredient"),
    ("Oxycodone Oral Tablet", "cannot read ingredient"),      # no strength
    ("10 MG Oral Tablet", "cannot read ingredient"),          # no ingredient
    ("oxycodone 10 Oral Tablet", "cannot read ingredient"),   # no unit
    ("oxycodone 10 MG", "has no dose form"),
    ("Acetaminophen 325 MG Oral Tablet / Oxycodone", "cannot read ingredient"),
])
def test_refuses_names_it_cannot_read(name, message):
    d = parse_drug_name(name)
    assert d.ingredient is None and message in d.error


def test_given_fields_win_over_the_name():
    d = resolve_drug("oxycodone hydrochloride 10 MG Oral Tablet", "Oxycodone HCl", "5", "mg", "Oral Tablet", "")
    assert d == Drug("oxycodone", 5.0, "MG", "Oral Tablet", False, "opioid_analgesic", parsed=False)


def test_blank_fields_are_read_from_the_name():
    d = resolve_drug("72 HR Fentanyl 0.025 MG/HR Transdermal System", "", "", "", "", "")
    assert (d.ingredient, d.strength, d.strength_unit, d.long_acting, d.parsed) == ("fentanyl", 25.0, "MCG/HR", True, True)


def test_an_explicit_long_acting_flag_is_kept():
    assert resolve_drug("oxycodone hydrochloride 10 MG Oral Tablet", "", "", "", "", "1").long_acting is True


@pytest.mark.parametrize("fields, message", [
    (("x", "oxycodone", "5", "", "Oral Tablet", ""), "cannot read"),
    (("oxycodone 5 MG Oral Tablet", "", "five", "MG", "", ""), "strength 'five' is not a number"),
    (("oxycodone 5 MG Oral Tablet", "", "5", "", "", ""), "must be given together"),
    (("oxycodone 5 MG Oral Tablet", "oxycodone", "0", "MG", "Oral Tablet", ""), "greater than zero"),
    (("oxycodone 5 MG Oral Tablet", "", "", "", "", "maybe"), "long_acting 'maybe'"),
])
def test_resolution_errors_say_what_is_wrong(fields, message):
    assert message in resolve_drug(*fields).error

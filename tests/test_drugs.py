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


# --- The vocabulary: every spelling of a unit and a dose form reads the same (analysis.vocabulary) ------

from analysis import vocabulary  # noqa: E402


@pytest.mark.parametrize("strength, unit, expected", [
    (10, "mg", (10, "MG")), (10, "MG", (10, "MG")), (10, "milligrams", (10, "MG")),
    (200, "mcg", (200, "MCG")), (200, "ug", (200, "MCG")), (200, "µg", (200, "MCG")),   # micro sign
    (200, "μg", (200, "MCG")), (200, "MCG", (200, "MCG")), (200, "micrograms", (200, "MCG")),  # Greek mu
    (50, "MCG/HR", (50, "MCG/HR")), (50, "mcg/h", (50, "MCG/HR")), (50, "MCG/1HR", (50, "MCG/HR")),
    (50, "mcg/hour", (50, "MCG/HR")), (50, "µg/h", (50, "MCG/HR")), (0.05, "MG/HR", (50, "MCG/HR")),
    (5, "MG/5ML", (1, "MG/ML")), (5, "mg/5 mL", (1, "MG/ML")), (1, "MG/ML", (1, "MG/ML")),
    (1, "mg/1ml", (1, "MG/ML")), (15, "MG/15ML", (1, "MG/ML")), (100, "MCG/5ML", (20, "MCG/ML")),
    (4, "MG/ACTUAT", (4, "MG/ACTUAT")), (100, "MCG/ACTUAT", (100, "MCG/ACTUAT")),
    (100, "mcg per spray", (100, "MCG/ACTUAT")), (100, "mcg/spray", (100, "MCG/ACTUAT")),
    (100, "MCG/ACTUATION", (100, "MCG/ACTUAT")),
    (3, "tablet", (3, "TABLET")),   # outside the vocabulary: kept as written, and no factor matches it
])
def test_every_unit_spelling_is_one_canonical_unit(strength, unit, expected):
    value, canonical = vocabulary.normalise_strength(strength, unit)
    assert (value, canonical) == (pytest.approx(expected[0]), expected[1])


@pytest.mark.parametrize("group, forms", [
    ("transdermal", ["Transdermal System", "PATCH, EXTENDED RELEASE", "FILM, EXTENDED RELEASE", "Patch",
                     "Transdermal Patch", "patch, extended release", "72 HR Transdermal System"]),
    ("transmucosal_tablet", ["Buccal Tablet", "TABLET; BUCCAL", "Sublingual Tablet", "TABLET; SUBLINGUAL",
                             "Lozenge", "LOZENGE", "Oral Lozenge", "Lozenge/Troche", "TROCHE"]),
    ("transmucosal_film", ["Buccal Film", "FILM; BUCCAL", "Film", "FILM, SOLUBLE"]),
    ("oral_spray", ["Sublingual Spray", "SPRAY; SUBLINGUAL", "Mucosal Spray", "SPRAY, METERED; SUBLINGUAL"]),
    ("nasal_spray", ["Nasal Spray", "SPRAY; NASAL", "SPRAY, METERED; NASAL", "Metered Dose Nasal Spray"]),
    ("other", ["Oral Solution", "SOLUTION; ORAL", "Oral Tablet", "TABLET", "Extended Release Oral Tablet",
               "Spray", "", None]),
])
def test_every_dose_form_spelling_is_one_group(group, forms):
    assert {f: vocabulary.form_group(f) for f in forms} == {f: group for f in forms}


def test_a_strength_per_hour_is_a_patch_whatever_the_form_says():
    assert vocabulary.form_group("", "MCG/HR") == vocabulary.form_group("Oral Tablet", "mcg/h") == "transdermal"


@pytest.mark.parametrize("fields", [
    ("", "fentanyl", "50", "MCG/HR", "PATCH, EXTENDED RELEASE", ""),
    ("", "Fentanyl", "0.05", "mg/hr", "Transdermal System", ""),
    ("Fentanyl 50 MCG/HR PATCH, EXTENDED RELEASE", "", "", "", "", ""),
    ("72 HR Fentanyl 0.05 MG/HR Transdermal System", "", "", "", "", ""),
    ("Fentanyl 50 mcg/h Transdermal Patch", "", "", "", "", ""),
    ("Fentanyl 50 MCG/1HR Patch", "", "", "", "", ""),
])
def test_names_and_given_fields_read_a_patch_the_same(fields):
    d = resolve_drug(*fields)
    assert (d.ingredient, d.strength, d.strength_unit, d.form_group, d.long_acting) == (
        "fentanyl", pytest.approx(50), "MCG/HR", "transdermal", True)


@pytest.mark.parametrize("fields", [
    ("Oxycodone Hydrochloride 5 MG/5ML Oral Solution", "", "", "", "", ""),
    ("", "oxycodone", "5", "MG/5ML", "SOLUTION; ORAL", ""),
    ("oxycodone hydrochloride 1 MG/ML Oral Solution", "", "", "", "", ""),
])
def test_names_and_given_fields_read_a_liquid_the_same(fields):
    d = resolve_drug(*fields)
    assert (d.ingredient, d.strength, d.strength_unit, d.form_group) == ("oxycodone", pytest.approx(1), "MG/ML", "other")


@pytest.mark.parametrize("fields, unit, group", [
    (("fentanyl citrate 0.2 MG Buccal Tablet", "", "", "", "", ""), "MG", "transmucosal_tablet"),
    (("", "fentanyl citrate", "200", "ug", "TABLET; BUCCAL", ""), "MCG", "transmucosal_tablet"),
    (("fentanyl 0.1 MG/ACTUAT Nasal Spray", "", "", "", "", ""), "MG/ACTUAT", "nasal_spray"),
    (("", "fentanyl", "100", "mcg per spray", "SPRAY; NASAL", ""), "MCG/ACTUAT", "nasal_spray"),
    (("Fentanyl 100 µg per spray Sublingual Spray", "", "", "", "", ""), "MCG/ACTUAT", "oral_spray"),
])
def test_transmucosal_fentanyl_is_read_by_its_form(fields, unit, group):
    d = resolve_drug(*fields)
    assert (d.ingredient, d.strength_unit, d.form_group, d.long_acting) == ("fentanyl", unit, group, False)


def test_the_cdc_files_other_opioids_have_a_class():
    # The CDC MME file lists propoxyphene (0.23) and levomethadyl (8) among the opioids.
    assert parse_drug_name("Propoxyphene Napsylate 100 MG Oral Tablet").drug_class == "opioid_analgesic"
    assert parse_drug_name("Levomethadyl Acetate 10 MG/ML Oral Solution").drug_class == "opioid_analgesic"

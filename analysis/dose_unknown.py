"""Patients and prescriptions whose opioid dose cannot be computed under the chosen factor set.

A prescription has no dose when its ingredient, unit and dose form have no MME factor in the set
(analysis/reference/mme_factors.csv): tramadol and tapentadol under CDC 2016, transmucosal fentanyl under
CDC 2022 and 2016, a unit outside analysis.vocabulary; or when its quantity is unknown (supply whose days
are known and whose quantity nothing gives: quantity_source days_only, end_only; an OMOP extract with
quantity 0 everywhere), under every set. Such a patient is never counted as a 0-MME patient:
the dose-based measures (queries/measure_ltot_dose.sql, measure_naloxone_at_50.sql, the tapers) leave
out a patient with a day of unknown dose in the period and these helpers say how many. Pure functions.
"""
from __future__ import annotations

import pandas as pd

# The Overview warns above this share of the period's opioid prescriptions with no dose (issue 12, part 4).
WARN_SHARE = 0.01


def share_without_dose(coverage: pd.DataFrame) -> tuple[int, int, float]:
    """(prescriptions, without a dose, share 0-1) from period_dose_coverage rows (one per clinician)."""
    total = int(coverage["prescriptions"].sum()) if len(coverage) else 0
    unknown = int(coverage["no_dose"].sum()) if len(coverage) else 0
    return total, unknown, (unknown / total if total else 0.0)


def warning(coverage: pd.DataFrame, factor_set_label: str) -> str | None:
    """The headline's warning when more than WARN_SHARE of the period's opioid prescriptions have no dose."""
    total, unknown, share = share_without_dose(coverage)
    if share <= WARN_SHARE:
        return None
    return (f"{share:.1%} of the period's opioid prescriptions ({unknown:,} of {total:,}) have no dose under "
            f"{factor_set_label} (no MME factor, or no quantity recorded): their patients are left out of the dose "
            "figures (high dose, average dose, naloxone, tapers), so those figures describe the rest. The Data "
            "quality page lists the drugs; another factor set may cover those without a factor.")


def left_out(n: int, what: str = "patients") -> str | None:
    """'3 patients left out: dose unknown', or None when nobody is."""
    if n <= 0:
        return None
    return f"{n:,} {what if n != 1 else what.rstrip('s')} left out: dose unknown"


# The measures whose SQL takes :dose_unknown (true: the patients or tapers the measure leaves out).
DOSE_QUERIES = frozenset({"measure_ltot_dose", "measure_naloxone_at_50", "measure_taper_rapid",
                          "measure_abrupt_discontinuation"})


def is_dose_based(query: str) -> bool:
    """True when a measure needs each patient's dose, so patients with an unknown dose are left out."""
    return query in DOSE_QUERIES

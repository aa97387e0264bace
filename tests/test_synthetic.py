"""The synthetic data generator: reproducible, and rich enough for every panel."""
from __future__ import annotations

import csv
import filecmp
from collections import Counter

from analysis import synthetic
from tests.conftest import SAMPLE


def test_committed_sample_is_exactly_what_the_seed_makes(tmp_path):
    synthetic.generate(tmp_path, synthetic.SAMPLE_PATIENTS, seed=synthetic.SAMPLE_SEED)
    for name in ("clinics", "clinicians", "patients", "prescriptions", "events"):
        assert filecmp.cmp(tmp_path / f"{name}.csv", SAMPLE / f"{name}.csv", shallow=False), name


def test_sample_has_what_every_panel_needs():
    with (SAMPLE / "prescriptions.csv").open(encoding="utf-8") as f:
        rx = list(csv.DictReader(f))
    with (SAMPLE / "patients.csv").open(encoding="utf-8") as f:
        patients = list(csv.DictReader(f))
    with (SAMPLE / "events.csv").open(encoding="utf-8") as f:
        events = Counter(r["event_type"] for r in csv.DictReader(f))
    names = " ".join({r["drug_name"] or "" for r in rx})
    for needle in ("Fentanyl", "Methadone", "Extended Release", "Alprazolam", "Naloxone", "Buprenorphine",
                   "Acetaminophen 325 MG / Oxycodone"):
        assert needle in names
    assert len({r["clinician_id"] for r in rx}) >= 24
    assert sum(r["cancer"] == "true" for r in patients) >= 20
    assert sum(r["hospice_palliative"] == "1" for r in patients) >= 5
    assert {"ed_visit", "overdose", "mental_health_crisis"} <= set(events)
    assert sum(1 for r in rx if r["ingredient"]) > 100  # some rows give the drug fields explicitly


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    synthetic.generate(a, 60, seed=1)
    synthetic.generate(b, 60, seed=1)
    synthetic.generate(c, 60, seed=2)
    assert filecmp.cmp(a / "prescriptions.csv", b / "prescriptions.csv", shallow=False)
    assert not filecmp.cmp(a / "prescriptions.csv", c / "prescriptions.csv", shallow=False)


def test_counts_returned_match_the_files(tmp_path):
    counts = synthetic.generate(tmp_path, 50, seed=3)
    for name, n in counts.items():
        with (tmp_path / f"{name}.csv").open(encoding="utf-8") as f:
            assert sum(1 for _ in f) - 1 == n

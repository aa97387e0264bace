"""Synthetic prescribing data in the data contract's format, streamed to disk.

Every panel of the product needs something to show, so the generator builds: clinics and clinicians
with genuinely different styles (dose level, long-term therapy, benzodiazepine co-prescribing,
naloxone, long or long-acting first prescriptions, taper speed), patients on stable long-term therapy,
gradual, moderate and rapid tapers, abrupt discontinuations, new starts (some becoming long-term),
patients seeing many prescribers, excluded patients (cancer, hospice, sickle cell), ED visits,
overdoses and crises (more often after rapid tapers and abrupt stops), and a few deliberately bad
rows. Python's `random.Random(seed)` drives it, so a seed always gives the same files. One patient is
built and written at a time: memory stays flat at 10 million prescriptions.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import random
from dataclasses import dataclass
from pathlib import Path

DATA_START = dt.date(2023, 1, 1)
DATA_END = dt.date(2025, 12, 31)
SAMPLE_SEED = 7          # data/sample/ was made with `rxdash generate --patients 1200 --seed 7`
SAMPLE_PATIENTS = 1200
PRESCRIPTIONS_PER_PATIENT = 18.2  # the generator's average, for sizing a run by prescriptions

CLINIC_NAMES = ["Riverside Family Practice", "Northgate Health Centre", "Hillcrest Pain and Spine",
                "Lakeview Community Clinic", "Meadowbrook Internal Medicine", "Harbour Street Surgery",
                "Oak Valley Primary Care", "St Brendan's Outpatients"]
SPECIALTIES = ["Family medicine", "Family medicine", "Internal medicine", "Internal medicine",
               "Pain medicine", "Physical medicine and rehabilitation", "Nurse practitioner"]
FIRST = ["Alex", "Sam", "Jordan", "Priya", "Chen", "Maria", "Tomasz", "Aisha", "Kofi", "Ingrid", "Mateo",
         "Hana", "Oliver", "Fatima", "Lars", "Nadia", "Raj", "Grace", "Diego", "Yuki", "Emeka", "Sofia"]
LAST = ["Okafor", "Lindqvist", "Haddad", "Moreau", "Tanaka", "Kowalski", "Brennan", "Singh", "Alvarez",
        "Nguyen", "Osei", "Fischer", "Rossi", "Carter", "Dubois", "Kim", "Mensah", "Novak", "Ibrahim", "Walsh"]


@dataclass(frozen=True)
class Product:
    """An opioid product: RxNorm-style name, strength, MME per unit (CDC 2022), units per day step."""

    name: str
    mme_per_unit: float
    long_acting: bool
    patch: bool = False
    ingredient: str = ""
    strength: str = ""
    unit: str = ""
    form: str = ""


SHORT_ACTING = [
    Product("Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet", 7.5, False),
    Product("oxycodone hydrochloride 5 MG Oral Tablet", 7.5, False),
    Product("oxycodone hydrochloride 10 MG Oral Tablet", 15, False),
    Product("Oxycodone Hydrochloride 15 MG Oral Tablet [Roxicodone]", 22.5, False),
    Product("Acetaminophen 325 MG / Hydrocodone Bitartrate 5 MG Oral Tablet", 5, False),
    Product("Acetaminophen 325 MG / Hydrocodone Bitartrate 10 MG Oral Tablet", 10, False),
    Product("Tramadol Hydrochloride 50 MG Oral Tablet", 10, False),
    Product("Hydromorphone Hydrochloride 2 MG Oral Tablet", 10, False),
    Product("Morphine Sulfate 15 MG Oral Tablet", 15, False),
    Product("Tapentadol 50 MG Oral Tablet", 20, False),
    Product("Acetaminophen 300 MG / Codeine Phosphate 30 MG Oral Tablet", 4.5, False),
]
LONG_ACTING = [
    Product("12 HR Oxycodone Hydrochloride 20 MG Extended Release Oral Tablet", 30, True),
    Product("12 HR Morphine Sulfate 30 MG Extended Release Oral Tablet", 30, True),
    Product("12 HR Morphine Sulfate 15 MG Extended Release Oral Tablet", 15, True),
    Product("12 HR Hydrocodone Bitartrate 10 MG Extended Release Oral Capsule", 10, True),
    Product("Methadone Hydrochloride 10 MG Oral Tablet", 47, True),
    # A patch worn 72 h: 2.4 MME per mcg/hr (CDC 2022); mme_per_unit is per mcg/hr of one patch.
    Product("72 HR Fentanyl 0.025 MG/HR Transdermal System", 2.4 * 25, True, patch=True),
    Product("72 HR Fentanyl 0.05 MG/HR Transdermal System", 2.4 * 50, True, patch=True),
]
# Some rows carry the drug fields explicitly instead of leaving them to be parsed from the name.
EXPLICIT = Product("Oxycodone HCl 10mg tab", 15, False, ingredient="oxycodone", strength="10", unit="MG",
                   form="Oral Tablet")
BENZOS = ["Alprazolam 0.5 MG Oral Tablet", "Lorazepam 1 MG Oral Tablet", "Clonazepam 0.5 MG Oral Tablet",
          "Diazepam 5 MG Oral Tablet"]
NALOXONE = "Naloxone Hydrochloride 4 MG/ACTUAT Nasal Spray"
BUPRENORPHINE = "Buprenorphine 8 MG / Naloxone 2 MG Sublingual Tablet"


@dataclass
class Clinician:
    """A prescriber and the habits that make their figures differ from their peers'."""

    clinician_id: str
    clinic_id: str
    dose_level: float       # multiplies patients' target MME
    ltot_propensity: float  # chance a new start goes on to long-term therapy
    benzo_rate: float
    naloxone_rate: float
    long_first_rate: float  # first prescriptions over 7 days
    la_start_rate: float    # ER/LA first prescriptions
    rapid_taper_rate: float
    abrupt_rate: float


class _Writer:
    """CSV writers for the five files, with running row counts."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.files = {}
        self.writers = {}
        self.counts = {}
        headers = {
            "clinics": ["clinic_id", "clinic_name"],
            "clinicians": ["clinician_id", "clinician_name", "specialty", "clinic_id"],
            "patients": ["patient_id", "birth_date", "sex", "cancer", "hospice_palliative", "sickle_cell",
                         "opioid_use_disorder"],
            "prescriptions": ["rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient",
                              "strength", "strength_unit", "dose_form", "quantity", "days_supply",
                              "long_acting", "pharmacy_id"],
            "events": ["patient_id", "event_date", "event_type"],
        }
        for name, header in headers.items():
            f = (out / f"{name}.csv").open("w", newline="", encoding="utf-8")
            self.files[name] = f
            self.writers[name] = csv.writer(f, lineterminator="\n")
            self.writers[name].writerow(header)
            self.counts[name] = 0

    def row(self, table: str, values: list) -> None:
        self.writers[table].writerow(values)
        self.counts[table] += 1

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _clinicians(rng: random.Random, n_clinics: int, n_clinicians: int, w: _Writer) -> list[Clinician]:
    for c in range(n_clinics):
        name = CLINIC_NAMES[c] if c < len(CLINIC_NAMES) else f"Community Clinic {c + 1}"
        w.row("clinics", [f"C{c + 1:02d}", name])
    out = []
    for i in range(n_clinicians):
        clinic = f"C{i % n_clinics + 1:02d}"
        # Clinic cultures differ a little; clinicians differ more (lognormal spread of habits).
        clinic_shift = 0.15 * ((i % n_clinics) - (n_clinics - 1) / 2) / max(1, n_clinics - 1)
        doc = Clinician(
            clinician_id=f"D{i + 1:04d}", clinic_id=clinic,
            dose_level=math.exp(rng.gauss(clinic_shift, 0.25)),
            ltot_propensity=min(0.6, max(0.03, rng.betavariate(2, 9))),
            benzo_rate=min(0.7, rng.betavariate(1.5, 8)),
            naloxone_rate=rng.betavariate(2, 3),
            long_first_rate=rng.betavariate(1.5, 5),
            la_start_rate=rng.betavariate(1, 20),
            rapid_taper_rate=rng.betavariate(2, 5),
            abrupt_rate=rng.betavariate(1.5, 7),
        )
        if i == 2:  # a clear outlier on dose, to be found by the funnel plot
            doc.dose_level = 2.6
        if i == 5:  # a clear outlier on benzodiazepine co-prescribing
            doc.benzo_rate = 0.75
        out.append(doc)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        w.row("clinicians", [doc.clinician_id, name, rng.choice(SPECIALTIES), clinic])
    return out


class _Patient:
    """Writes one patient's fills; keeps the last fill to place the next one."""

    def __init__(self, rng: random.Random, w: _Writer, patient_id: str, doc: Clinician,
                 others: list[Clinician], counter: list[int]) -> None:
        self.rng, self.w, self.pid, self.doc, self.others, self.counter = rng, w, patient_id, doc, others, counter
        self.pharmacy = f"PH{rng.randint(1, 40):03d}"

    def prescriber(self) -> Clinician:
        # Most fills come from the patient's own clinician; a few from a covering colleague.
        return self.doc if self.rng.random() < 0.92 else self.rng.choice(self.others)

    def fill(self, date: dt.date, drug: str | Product, quantity: float, days: int,
             doc: Clinician | None = None) -> None:
        if date > DATA_END:
            return
        self.counter[0] += 1
        doc = doc or self.prescriber()
        qty = int(quantity) if float(quantity).is_integer() else round(quantity, 1)
        if isinstance(drug, Product) and drug.ingredient:
            self.w.row("prescriptions", [f"RX{self.counter[0]:09d}", self.pid, doc.clinician_id, date.isoformat(),
                                         drug.name, drug.ingredient, drug.strength, drug.unit, drug.form, qty,
                                         days, "false", self.pharmacy])
            return
        name = drug.name if isinstance(drug, Product) else drug
        self.w.row("prescriptions", [f"RX{self.counter[0]:09d}", self.pid, doc.clinician_id, date.isoformat(),
                                     name, "", "", "", "", qty, days, "", self.pharmacy])

    def opioid(self, date: dt.date, product: Product, mme: float, days: int,
               doc: Clinician | None = None) -> float:
        """Fill enough units for about `mme` a day; returns the MME a day actually supplied."""
        if product.patch:
            patches = max(1, round(days / 3))
            self.fill(date, product, patches, days, doc)
            return product.mme_per_unit * patches * 3 / days
        per_day = max(0.5, round(mme / product.mme_per_unit * 2) / 2)
        self.fill(date, product, per_day * days, days, doc)
        return product.mme_per_unit * per_day

    def event(self, date: dt.date, kind: str) -> None:
        if DATA_START <= date <= DATA_END:
            self.w.row("events", [self.pid, date.isoformat(), kind])


def _chronic_product(rng: random.Random, mme: float) -> Product:
    if mme >= 60 and rng.random() < 0.45:
        choices = [p for p in LONG_ACTING if p.mme_per_unit <= mme]
        return rng.choice(choices or LONG_ACTING[:1])
    if rng.random() < 0.04:
        return EXPLICIT
    # Two to six tablets a day, as a prescriber would write it.
    fitting = [p for p in SHORT_ACTING if mme / 6 <= p.mme_per_unit <= mme / 2]
    return rng.choice(fitting or [min(SHORT_ACTING, key=lambda p: abs(p.mme_per_unit - mme / 3))])


def _patient(rng: random.Random, w: _Writer, index: int, docs: list[Clinician], counter: list[int]) -> None:
    pid = f"P{index:07d}"
    doc = rng.choice(docs)
    clinic_peers = [d for d in docs if d.clinic_id == doc.clinic_id and d is not doc] or docs
    p = _Patient(rng, w, pid, doc, clinic_peers, counter)
    birth = dt.date(rng.randint(1935, 2002), rng.randint(1, 12), rng.randint(1, 28))
    cancer = rng.random() < 0.04
    hospice = rng.random() < 0.015
    sickle = rng.random() < 0.008
    oud = rng.random() < 0.03
    w.row("patients", [pid, birth.isoformat(), rng.choice("FM"), str(cancer).lower(), int(hospice),
                       int(sickle), str(oud).lower()])

    span = (DATA_END - DATA_START).days
    start = DATA_START + dt.timedelta(days=rng.randint(0, span - 20))
    kind = rng.random()
    if oud and rng.random() < 0.6:
        d = start
        while d <= DATA_END:
            p.fill(d, BUPRENORPHINE, 60, 30)
            d += dt.timedelta(days=30)
        return
    if rng.random() < 0.05 + 0.1 * (doc.ltot_propensity > 0.25):
        # Seen by four or more prescribers within a few months (the multiple-prescriber measure).
        d = start
        for _ in range(rng.randint(4, 6)):
            p.opioid(d, rng.choice(SHORT_ACTING[:3]), 30, 10, doc=rng.choice(docs))
            d += dt.timedelta(days=rng.randint(12, 30))
        return
    if kind < 0.42:
        _acute(rng, p, start, doc)
    elif kind < 0.72 or cancer or hospice:
        _long_term(rng, p, DATA_START + dt.timedelta(days=rng.randint(0, 200)), doc, course="stable")
    elif kind < 0.86:
        course = "abrupt" if rng.random() < doc.abrupt_rate * 1.5 else "taper"
        # Starts spread over the first 20 months, so tapers and stops fall in every year of the data.
        _long_term(rng, p, DATA_START + dt.timedelta(days=rng.randint(0, 600)), doc, course=course)
    else:
        _acute(rng, p, start, doc, becomes_long_term=True)
    if rng.random() < 0.06:
        p.event(start + dt.timedelta(days=rng.randint(0, 400)), "ed_visit")


def _acute(rng: random.Random, p: _Patient, start: dt.date, doc: Clinician,
           becomes_long_term: bool = False) -> None:
    """A new start: the index fill's length and form follow the prescriber's habits."""
    long_first = rng.random() < doc.long_first_rate
    days = rng.choice([10, 14, 21, 30]) if long_first else rng.choice([3, 3, 5, 5, 7, 7])
    if rng.random() < doc.la_start_rate:
        p.opioid(start, LONG_ACTING[2], 30, max(days, 14), doc=doc)
    else:
        p.opioid(start, rng.choice(SHORT_ACTING[:7]), 30 * doc.dose_level, days, doc=doc)
    if becomes_long_term or rng.random() < doc.ltot_propensity * 0.5:
        _long_term(rng, p, start + dt.timedelta(days=days + rng.randint(0, 10)), doc, course="stable",
                   first_fill=False)
    elif rng.random() < 0.3:
        p.opioid(start + dt.timedelta(days=days + rng.randint(1, 20)), SHORT_ACTING[0], 20, 5, doc=doc)


def _long_term(rng: random.Random, p: _Patient, start: dt.date, doc: Clinician, course: str,
               first_fill: bool = True) -> None:
    """Monthly fills at a stable dose; then maybe a taper (gradual to rapid) or an abrupt stop."""
    baseline = max(15.0, rng.lognormvariate(math.log(55), 0.55) * doc.dose_level)
    if course != "stable":
        baseline = max(baseline, 55.0)
    product = _chronic_product(rng, baseline)
    days_on = rng.randint(220, 420) if course != "stable" else 10_000
    d = start
    supplied = baseline
    benzo = rng.random() < doc.benzo_rate
    naloxone = baseline >= 50 and rng.random() < doc.naloxone_rate
    month = 0
    while d <= DATA_END and (d - start).days < days_on:
        supplied = p.opioid(d, product, baseline * rng.uniform(0.97, 1.03), 30)
        if benzo:
            p.fill(d + dt.timedelta(days=rng.randint(0, 4)), rng.choice(BENZOS[:2]), 60, 30)
        if naloxone and month % 12 == 0:
            p.fill(d, NALOXONE, 2, 1)
        # Early refills now and then, so overlapping supply must be summed correctly.
        d += dt.timedelta(days=30 - (rng.randint(2, 6) if rng.random() < 0.12 else 0) + rng.randint(0, 2))
        month += 1
    if course == "stable" or d > DATA_END:
        return
    if course == "abrupt":
        _after_stop(rng, p, d, risk=0.35)
        return
    roll = rng.random()
    if roll < doc.rapid_taper_rate:
        rate = rng.uniform(0.45, 0.8)     # > 40% of baseline a month: rapid (Agnoli 2021)
    elif roll < doc.rapid_taper_rate + 0.35:
        rate = rng.uniform(0.04, 0.09)    # <= 10% a month: CDC 2022's gradual pace
    else:
        rate = rng.uniform(0.15, 0.35)
    # The first lower-dose fill replaces the last full-dose one as it runs out (fill dates fall on any
    # day of the month, so steps rarely line up with calendar months).
    d -= dt.timedelta(days=rng.randint(0, 2))
    dose = supplied
    floor = baseline * rng.choice([0.0, 0.0, 0.3, 0.5])
    # Tapers are written in half tablets of oxycodone 5 mg (3.75 MME), so a monthly step of a whole
    # number of half tablets keeps the intended pace exactly.
    step = max(3.75, round(rate * baseline / 3.75) * 3.75)
    while d <= DATA_END:
        dose -= step
        if dose <= max(floor, 4):
            break
        p.opioid(d, SHORT_ACTING[1], dose, 30)
        d += dt.timedelta(days=30)
    if floor > 4:
        for _ in range(rng.randint(2, 8)):
            p.opioid(d, SHORT_ACTING[1], floor, 30)
            d += dt.timedelta(days=30)
    _after_stop(rng, p, d, risk=0.25 if rate > 0.4 else 0.08)


def _after_stop(rng: random.Random, p: _Patient, stop: dt.date, risk: float) -> None:
    """Events after a stop: more frequent after rapid tapers and abrupt stops (Agnoli 2021)."""
    for kind, weight in (("ed_visit", 1.0), ("mental_health_crisis", 0.5), ("overdose", 0.25),
                         ("hospitalization", 0.4)):
        if rng.random() < risk * weight:
            p.event(stop + dt.timedelta(days=rng.randint(3, 120)), kind)


def _bad_rows(w: _Writer, counter: list[int]) -> None:
    """A few deliberately bad rows, one per rejection reason, so the Data quality page has work."""
    good = ["P0000001", "D0001", "2024-03-01", "oxycodone hydrochloride 5 MG Oral Tablet", "", "", "", "",
            "60", "30", "", ""]
    variants = [
        {2: "2025-13-45"}, {8: "-30"}, {9: "0"}, {9: "400"}, {0: "P9999999"}, {1: "D9999"},
        {3: "Tylenol"}, {2: "2031-01-01"}, {8: "sixty"},
    ]
    for change in variants:
        counter[0] += 1
        row = list(good)
        for k, v in change.items():
            row[k] = v
        w.row("prescriptions", [f"RX{counter[0]:09d}", *row])
    counter[0] += 1
    exact = [f"RX{counter[0]:09d}", *good]
    w.row("prescriptions", exact)
    w.row("prescriptions", exact)  # an exact repeat: loaded once, the repeat rejected
    counter[0] += 1
    w.row("prescriptions", [f"RX{counter[0]:09d}", *good])
    w.row("prescriptions", [f"RX{counter[0]:09d}", *good[:8], "90", *good[9:]])  # conflicting pair
    counter[0] += 1
    w.row("prescriptions", [f"RX{counter[0]:09d}", "P0000001", "D0001", "2024-03-01"])  # a truncated line
    # A patient id on two rows that differ: neither can be trusted, so both are rejected.
    w.row("patients", ["P9000000", "1970-01-01", "F", "false", "0", "0", "0"])
    w.row("patients", ["P9000000", "1971-01-01", "F", "false", "0", "0", "0"])
    w.row("events", ["P0000002", "2024-02-30", "ed_visit"])


def generate(out: Path | str, patients: int, seed: int = 7, bad_rows: bool = True) -> dict[str, int]:
    """Write the five CSV files for `patients` patients; returns rows written per file."""
    rng = random.Random(seed)
    w = _Writer(Path(out))
    try:
        n_clinics = max(3, min(len(CLINIC_NAMES), patients // 400 + 2))
        n_clinicians = max(12, min(2000, patients // 30))
        docs = _clinicians(rng, n_clinics, n_clinicians, w)
        counter = [0]
        for i in range(1, patients + 1):
            _patient(rng, w, i, docs, counter)
        if bad_rows:
            _bad_rows(w, counter)
    finally:
        w.close()
    return dict(w.counts)

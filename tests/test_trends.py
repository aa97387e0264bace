"""Clinicians over time (analysis.trends): deciles by quarter and sustained shifts, on planted series."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import stats, trends

QUARTERS = pd.to_datetime(["2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01", "2026-01-01"])


def series(planted: dict[str, list[int]], n: int = 40, others: int = 20) -> pd.DataFrame:
    """Quarterly funnels of `others` steady clinicians (12, 11 or 13 of 40: 30% give or take a patient) and the
    planted ones (their numerators of n per quarter), as trends.quarter_rows."""
    frames = []
    for q, quarter in enumerate(QUARTERS):
        units = [{"unit_id": f"D{i:02d}", "numerator": 12 + (i + q) % 3 - 1, "denominator": n} for i in range(others)]
        units += [{"unit_id": u, "numerator": counts[q], "denominator": n} for u, counts in planted.items()]
        funnel = stats.funnel_proportions(pd.DataFrame(units))
        frames.append(trends.quarter_rows(funnel, quarter))
    return pd.concat(frames, ignore_index=True)


def test_a_step_that_stays_is_reported_from_its_quarter_and_noise_of_the_same_size_is_not():
    # STEP: 30% (12 of 40) for two quarters, then 55% (22 of 40) from Q3 2025 on.
    # NOISE: the same 10-patient size, but up, down, up: 55%, 5%, 55% in Q2-Q4, back to 30% after; NOISE2 the
    # same three quarters later, after a steady start: 55%, 5%, 55% in Q3-Q5.
    s = series({"STEP": [12, 12, 22, 22, 22], "NOISE": [12, 22, 2, 22, 12], "NOISE2": [12, 12, 22, 2, 22]})
    step_z = s[s["unit_id"] == "STEP"].set_index("quarter_start")["z"]
    # One quarter of the step is about 3.3 standard errors: not enough alone (S+ = z - k < h = 4) ...
    assert 2.5 < step_z.iloc[2] < 4.5
    found = trends.shifts(s)
    assert found["unit_id"].tolist() == ["STEP"]
    shift = found.iloc[0]
    # ... and the second quarter at the new level crosses h: reported, beginning in Q3 2025.
    assert shift["direction"] == "up" and shift["began"] == QUARTERS[2] and shift["signalled"] == QUARTERS[3]
    assert shift["quarters"] == 2
    assert shift["before"] == pytest.approx(12 / 40) and shift["after"] == pytest.approx(22 / 40)


def test_a_step_down_is_found_and_one_quarter_alone_never_is():
    s = series({"DOWN": [22, 22, 12, 12, 12], "SPIKE": [12, 12, 40, 12, 12]})
    found = trends.shifts(s).set_index("unit_id")
    # DOWN: 55% for two quarters (its own level), then the others' 30% from Q3 2025: a shift down.
    assert found.loc["DOWN", ["direction", "began", "signalled"]].tolist() == ["down", QUARTERS[2], QUARTERS[3]]
    assert found.loc["DOWN", "before"] == pytest.approx(0.55) and found.loc["DOWN", "after"] == pytest.approx(0.30)
    # SPIKE: one quarter at 100% (z about 9, counted as h = 4): one quarter is not a sustained shift.
    assert "SPIKE" not in found.index


def test_cusum_by_hand():
    # Level: the mean of the first two z (0 and 0) = 0. Then d = 3, 3: S+ = 2.5, then 5.0 > 4 after two
    # quarters that pushed it: signalled at 3, began at 2. The level becomes 3 (the shift's mean z); d = -5 + ...
    z = pd.Series([0.0, 0.0, 3.0, 3.0, 3.0, -9.0, 3.0], index=range(7))
    # After the restart: z = 3 is the new level (d = 0); z = -9: d = -12, counted as -4: S- = 3.5, one quarter;
    # z = 3: d = 0, S- = 3.0, not pushed: no second shift.
    assert trends.cusum(z) == [{"direction": "up", "began": 2, "signalled": 3, "quarters": 2}]
    # A quarter without enough cases (NaN) does not enter: the run carries over it.
    gap = pd.Series([0.0, 0.0, 3.0, np.nan, 3.0], index=range(5))
    assert trends.cusum(gap) == [{"direction": "up", "began": 2, "signalled": 4, "quarters": 2}]
    # Too short a history for its own level: nothing is tested.
    assert trends.cusum(pd.Series([0.0, 9.0], index=range(2)), reference=2) == []


def test_deciles_need_five_judged_units():
    rows = pd.DataFrame({"quarter_start": [QUARTERS[0]] * 6 + [QUARTERS[1]] * 4,
                         "unit_id": list("ABCDEF") + list("ABCD"),
                         "denominator": [20, 20, 20, 20, 20, 5] + [20] * 4,
                         "value": [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.1, 0.2, 0.3, 0.4]})
    d = trends.deciles(rows).set_index("quarter_start")
    # Q1: five judged (F has 5 cases and is left out): the median is 0.3, the 10th centile 0.14 (numpy's
    # linear interpolation: 0.1 + 0.4 x 0.1), the 90th 0.46.
    assert d.loc[QUARTERS[0], "units"] == 5
    assert d.loc[QUARTERS[0], ["p10", "p50", "p90"]].tolist() == pytest.approx([0.14, 0.3, 0.46])
    # Q2: four judged, too few for a spread.
    assert d.loc[QUARTERS[1], "units"] == 4 and np.isnan(d.loc[QUARTERS[1], "p50"])


# --- The digest on a planted data set, loaded into a real database -------------------------------------------
def planted_quarters(folder):
    """New starts (no opioid in the 90 days before) in five quarters, Q1 2025 to Q1 2026, 30 per clinician and
    quarter, their first supply 10 days (over 7: in the numerator) or 5. Twelve steady clinicians give 9 of 30
    a long first supply every quarter (30%); STEP 9 of 30 in Q1-Q2 2025, then 18 of 30 (60%) from Q3 2025 on;
    NOISE 9, 18, 3, 18, 9: the same size, up, down, up."""
    from tests.fixtures import OXY10, write_dataset

    counts = {**{f"D{i:02d}": [9] * 5 for i in range(1, 13)}, "STEP": [9, 9, 18, 18, 18], "NOISE": [9, 18, 3, 18, 9]}
    days = ["2025-02-15", "2025-05-15", "2025-08-15", "2025-11-15", "2026-02-15"]
    patients = [["PX", "1970-01-01", "F", "0", "0", "0", "0"]]
    rx = [["RX0", "PX", "D01", "2024-10-01", OXY10, "", "", "", "", "20", "5", ""]]   # the data start 1 Oct 2024
    for c, per_quarter in counts.items():
        for q, (day, long) in enumerate(zip(days, per_quarter)):
            for i in range(30):
                p = f"{c}-{q}-{i}"
                patients.append([p, "1970-01-01", "FM"[i % 2], "0", "0", "0", "0"])
                supply = 10 if i < long else 5
                rx.append([f"R{p}", p, c, day, OXY10, "", "", "", "", str(4 * supply), str(supply), ""])
    return write_dataset(folder, clinicians=[[c, "", "Family medicine", "C1"] for c in counts],
                         clinics=[["C1", "North"]], patients=patients, prescriptions=rx, events=[])


def test_the_digest_reports_a_step_from_its_quarter_and_not_the_noise(tmp_path):
    import datetime as dt

    from analysis import db, digest, ingest, privacy, summary
    from tests.test_cli import run

    url = f"duckdb:///{tmp_path / 'planted.duckdb'}"
    engine = db.make_engine(url)
    ingest.load_directory(engine, planted_quarters(tmp_path / "data"), tmp_path / "rejects.csv",
                          as_of=dt.date(2026, 6, 1), extract_date=dt.date(2026, 3, 31))
    s = summary.Settings(dt.date(2025, 10, 1), dt.date(2025, 12, 31), selected=("new_start_over_7d",))
    names = privacy.pseudonyms(["STEP", "NOISE"], privacy.pseudonym_secret())
    with engine.connect() as conn:
        q3, q4 = digest.build(conn, "2025Q3", s), digest.build(conn, "2025Q4", s)
    engine.dispose()
    section = q4.split("<h3>New starts given more than 7 days</h3>")[1].split("<h3>")[0].split("<h2>")[0]
    # Q4 2025: STEP's second quarter at 60% completes the shift, dated from Q3 2025; NOISE is not named.
    assert f"{names['STEP']}: rose from 30.0% to 60.0% (since Q3 2025)" in section
    assert names["NOISE"] not in q4
    assert "In Q4 2025: 1 sustained rise and no sustained falls" in q4
    # Q3 2025: one quarter at the new level is not yet a sustained shift.
    assert "rose from" not in q3 and "fell from" not in q3
    assert "In Q3 2025: no sustained rises and no sustained falls" in q3
    # The command line writes it, as PDF or HTML, and refuses a quarter it cannot read in one line.
    out = run("digest", "--db", url, "--quarter", "2025Q4", "--out", str(tmp_path / "digest.html"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "digest.html").read_text(encoding="utf-8").count("rose from 30.0% to 60.0%") == 1
    bad = run("digest", "--db", url, "--quarter", "Q4", "--out", str(tmp_path / "d.html"), cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.strip() == "rxdash digest: error: 'Q4' is not a quarter: write it as 2025Q4"
    outside = run("digest", "--db", url, "--quarter", "2027Q1", "--out", str(tmp_path / "d.html"), cwd=tmp_path)
    assert outside.returncode == 1 and outside.stderr.strip() == (
        "rxdash digest: error: 2027Q1 is outside the data (01 Oct 2024 to 31 Mar 2026)")
    wrong = run("digest", "--db", url, "--quarter", "2025Q4", "--out", str(tmp_path / "d.txt"), cwd=tmp_path)
    assert wrong.returncode == 1 and wrong.stderr.strip() == "rxdash digest: error: --out must end in .pdf or .html, not .txt"
    assert not (tmp_path / "d.html").exists() and not (tmp_path / "d.txt").exists()   # nothing half-written
    assert "Traceback" not in bad.stderr + outside.stderr + wrong.stderr

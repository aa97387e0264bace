"""Sidebar filters shared by every page, kept in the URL query string so a view can be shared as a link.

`sidebar()` runs once per script run from the entry point (dashboard/app.py): it seeds each widget from
the URL when the URL carries a value we did not write ourselves (a shared link, a link from another
page), draws the widgets, then writes the values in force back to the URL. Pages read the result with
`current()`. Every value read from the URL is checked against an allow-list or a range, so a hand-edited
link can only choose among the options the widgets offer.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from analysis import coverage, dose, exports, measures, privacy, summary
from dashboard import data, viewer

STATE = "_filters"
WRITTEN = "_filters_written"     # the query string this session last wrote: its echo is not new input
MESSAGE = "_filters_message"
INCOMING, PREVIOUS = "_url_incoming", "_url_previous"
DEFAULTS = {"low": measures.THRESHOLDS["low"], "high": measures.THRESHOLDS["high"],
            "gradual": dose.TaperParams.gradual_max_pct, "rapid": dose.TaperParams.rapid_min_pct,
            "factors": "cdc2022", "exclusions": True, "min_patients": 1}


@dataclass(frozen=True)
class Filters:
    """The filters in force and what they imply for the queries."""

    start: dt.date
    end: dt.date
    data_start: dt.date
    data_end: dt.date
    clinics: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    factor_set: str = DEFAULTS["factors"]
    low_mme: float = DEFAULTS["low"]
    high_mme: float = DEFAULTS["high"]
    gradual_max_pct: float = DEFAULTS["gradual"]
    rapid_min_pct: float = DEFAULTS["rapid"]
    exclusions: bool = DEFAULTS["exclusions"]
    min_patients: int = DEFAULTS["min_patients"]
    clinicians: frozenset[str] | None = None      # allowed clinician ids; None = everyone
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # id -> shown (pseudonym or name)
    codes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)   # id -> pseudonym code (links)
    clinic_names: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @functools.cached_property
    def cache_key(self) -> str:
        """Every field, the labels and names included, as one digest: what a kept answer computed from these
        filters is filed under (data.computed). Hashing the fields one by one took most of a warm page's time
        with two thousand clinicians."""
        fields = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        text = repr([(name, sorted(value.items()) if isinstance(value, dict) else
                      sorted(value) if isinstance(value, frozenset) else value) for name, value in fields])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def dose(self) -> dose.DoseParams:
        return dose.DoseParams(self.factor_set, self.exclusions)

    def tapers(self) -> dose.TaperParams:
        return dose.TaperParams(gradual_max_pct=self.gradual_max_pct, rapid_min_pct=self.rapid_min_pct)

    def measures(self) -> tuple[measures.Measure, ...]:
        return measures.configured(self.low_mme, self.high_mme)

    def measure(self, measure_id: str) -> measures.Measure:
        return next(m for m in self.measures() if m.id == measure_id)

    def measure_params(self, m: measures.Measure, start: dt.date | None = None,
                       end: dt.date | None = None) -> dict[str, object]:
        return measures.sql_params(m, start or self.start, end or self.end, self.data_start, self.data_end,
                                   self.dose(), dose.LtotParams(), self.tapers())

    def taper_params(self) -> dict[str, object]:
        return {**self.dose().sql(), **self.tapers().sql(self.data_start, self.data_end)}

    def settings(self) -> summary.Settings:
        return summary.Settings(self.start, self.end, self.dose(), tapers=self.tapers(),
                                low_mme=self.low_mme, high_mme=self.high_mme)

    def clinician_params(self) -> dict[str, object]:
        """Bound parameters of queries that filter prescribers in SQL (:all_clinicians, :clinician_ids)."""
        return {"all_clinicians": self.clinicians is None, "clinician_ids": tuple(sorted(self.clinicians or ("",)))}

    def previous(self) -> tuple[dt.date, dt.date] | None:
        """The calendar-aligned period before this one (analysis.coverage.previous_period: 2024 before 2025,
        the previous quarter or month, else the same number of days just before), if the data reach back
        to its start. Whether each figure can be compared also depends on its measurability."""
        start, end = coverage.previous_period(self.start, self.end)
        return (start, end) if start >= self.data_start else None

    def measurability(self, m: measures.Measure, start: dt.date | None = None,
                      end: dt.date | None = None) -> coverage.Measurability:
        """Whether measure m can be measured over the period (or start..end) with the data's bounds."""
        return measures.measurability(m, start or self.start, end or self.end, self.data_start, self.data_end,
                                      dose.LtotParams(), self.tapers())

    def keep(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows (one per patient or taper, with clinician_id) whose attributed clinician is selected."""
        if self.clinicians is None:
            return rows
        return rows[rows["clinician_id"].isin(self.clinicians)]

    def label(self, clinician_id: str) -> str:
        return self.labels.get(clinician_id, "Clinician (unknown)")

    def labelled(self, units: pd.DataFrame, measure: measures.Measure) -> pd.DataFrame:
        """Unit rows with `unit_label` (pseudonym, or clinic name) and `clinic_name` for the screen."""
        out = units.copy()
        clinic = lambda c: self.clinic_names.get(c, c)  # noqa: E731
        out["unit_label"] = out["unit_id"].map(self.label if measure.unit == "clinician" else clinic)
        out["clinic_name"] = out["clinic_id"].map(clinic)
        return out

    def context(self, title: str, clinicians: int | None = None, patients: int | None = None,
                min_cell: int = 11) -> exports.Context:
        """What an exported chart's footer says about these filters."""
        return exports.Context(title, self.period, self.scope, clinicians, patients,
                               f"dose thresholds {self.low_mme:g}/{self.high_mme:g} MME a day; taper bands "
                               f"{self.gradual_max_pct:g}%/{self.rapid_min_pct:g}% a month",
                               self.factor_set, self.exclusions, min_cell)

    @property
    def period(self) -> str:
        return f"{self.start:%d %b %Y} to {self.end:%d %b %Y}"

    @property
    def span(self) -> str:
        return f"from {self.start:%d %b %Y} to {self.end:%d %b %Y}"

    @property
    def scope(self) -> str:
        """Who is included, in words: 'all clinics', 'North Clinic; pain medicine'."""
        parts = [", ".join(self.clinic_names.get(c, c) for c in self.clinics) or "all clinics"]
        if self.specialties:
            parts.append(", ".join(s.lower() or "no specialty" for s in self.specialties))
        return "; ".join(parts)


def current() -> Filters | None:
    """The filters of this run; None (after saying why) when the database cannot answer."""
    f = st.session_state.get(STATE)
    if f is None:
        st.info(st.session_state.get(MESSAGE, "No data to show yet."), icon=":material/info:")
    return f


def _date(raw: str, low: dt.date, high: dt.date) -> dt.date | None:
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    return min(max(day, low), high)


def _number(raw: str, low: float, high: float) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


def fresh(key: str) -> list[str] | None:
    """The URL's values for `key` when they are new input this run (a shared link, a link from another
    page), not the echo of what this session wrote last time; None otherwise."""
    values = st.session_state.get(INCOMING, {}).get(key)
    return values if values and values != st.session_state.get(PREVIOUS, {}).get(key) else None


def page_choice(key: str, options: list[str]) -> None:
    """Seed a page's own widget (state key = URL key) from the URL when the value is new and allowed,
    else from the session's last choice (Streamlit forgets a widget's state once its page is left)."""
    values = fresh(key)
    if values and values[0] in options:
        st.session_state[key] = values[0]
    elif key not in st.session_state and st.session_state.get(f"_kept_{key}") in options:
        st.session_state[key] = st.session_state[f"_kept_{key}"]


def remember(key: str, value: str) -> None:
    """Keep a page's own choice in the URL beside the shared filters, and in the session."""
    st.query_params[key] = value
    st.session_state.setdefault(WRITTEN, {})[key] = [value]
    st.session_state[f"_kept_{key}"] = value


def tabs(key: str, labels: tuple[str, ...]) -> list:
    """Tabs whose content runs only when opened (each chart costs the browser time to draw); the open tab
    is a page choice kept in the URL (`?view=By clinic`), so a link can open it."""
    page_choice(key, list(labels))
    containers = st.tabs(list(labels), key=key, on_change="rerun")
    if st.session_state.get(key) not in (None, labels[0]):
        remember(key, st.session_state[key])
    return containers


def _seed_from_url(bounds: tuple[dt.date, dt.date], clinics: list[str], specialties: list[str]) -> None:
    """Put values from the URL into the widgets' state when they are new input (not our own echo)."""
    ss = st.session_state
    if (start := fresh("start")) or fresh("end"):
        s = _date((start or [ss["f_period"][0].isoformat()])[0], *bounds)
        e = _date((ss[INCOMING].get("end") or [ss["f_period"][-1].isoformat()])[0], *bounds)
        if s and e and s <= e:
            ss["f_period"] = (s, e)
    if values := fresh("clinic"):
        ss["f_clinics"] = [v for v in values if v in clinics]
    if values := fresh("specialty"):
        ss["f_specialties"] = [v for v in values if v in specialties]
    if (values := fresh("factors")) and values[0] in dose.FACTOR_SETS:
        ss["f_factors"] = values[0]
    if values := fresh("exclusions"):
        ss["f_exclusions"] = values[0] != "off"
    for key, low, high in (("low", 1, 1000), ("high", 1, 1000), ("gradual", 1, 100), ("rapid", 1, 100),
                           ("min_patients", 1, 10_000)):
        if (values := fresh(key)) and (value := _number(values[0], low, high)) is not None:
            ss[f"f_{key}"] = int(round(value))   # thresholds are whole numbers (MME a day, % a month)


def _ordered_pair(bar, name: str, lower: int, upper: int, problem: str, unit: str) -> tuple[int, int]:
    """(lower, upper) when lower < upper; else the last pair in force that was (the defaults at first), with
    one line saying why the input was refused."""
    key = f"_valid_{name}"
    if lower < upper:
        st.session_state[key] = (lower, upper)
        return lower, upper
    kept = st.session_state.get(key) or ((int(DEFAULTS["low"]), int(DEFAULTS["high"])) if name == "doses"
                                         else (int(DEFAULTS["gradual"]), int(DEFAULTS["rapid"])))
    bar.error(f"{problem.format(lower, upper)}: not applied; still using {kept[0]} and {kept[1]} ({unit}).",
              icon=":material/block:")
    return kept


def describe(f: Filters) -> dict[str, object]:
    """The filters in force as plain values (for the audit log): what the link would carry."""
    return {k: v if len(v) > 1 else v[0] for k, v in _to_url(f).items()}


def link_params(f: Filters) -> dict[str, list[str]]:
    """The query string values that carry these filters to another page (a link to a clinician's profile)."""
    return _to_url(f)


def _to_url(f: Filters) -> dict[str, list[str]]:
    """The query string for these filters: the period always, the rest only when not the default."""
    out = {"start": [f.start.isoformat()], "end": [f.end.isoformat()]}
    if f.clinics:
        out["clinic"] = list(f.clinics)
    if f.specialties:
        out["specialty"] = list(f.specialties)
    for key, value in (("factors", f.factor_set), ("low", f.low_mme), ("high", f.high_mme),
                       ("gradual", f.gradual_max_pct), ("rapid", f.rapid_min_pct), ("min_patients", f.min_patients)):
        if value != DEFAULTS[key]:
            out[key] = [f"{value:g}" if isinstance(value, float) else str(value)]
    if not f.exclusions:
        out["exclusions"] = ["off"]
    return out


def sidebar() -> Filters | None:
    """Draw the shared filters in the sidebar and keep them in the URL; also stored for `current()`."""
    ss = st.session_state
    ss[STATE] = None
    ss[INCOMING] = {k: st.query_params.get_all(k) for k in st.query_params}
    ss[PREVIOUS] = ss.get(WRITTEN, {})
    try:
        bounds_row = data.query("data_bounds").iloc[0]
        directory = data.query("clinician_directory")
    except data.DataUnavailable as e:
        st.session_state[MESSAGE] = str(e)
        return None
    if bounds_row["data_end"] is None:
        st.session_state[MESSAGE] = "The database has no prescriptions yet. Load some with `rxdash load DIR`."
        return None
    bounds = (bounds_row["data_start"], bounds_row["data_end"])
    clinic_names = dict(zip(directory["clinic_id"], directory["clinic_name"]))
    specialties = sorted(directory["specialty"].unique())

    last_year = default_period(bounds)
    for key, value in (("f_period", last_year), ("f_clinics", []), ("f_specialties", []),
                       ("f_factors", DEFAULTS["factors"]), ("f_exclusions", True), ("f_low", DEFAULTS["low"]),
                       ("f_high", DEFAULTS["high"]), ("f_gradual", DEFAULTS["gradual"]),
                       ("f_rapid", DEFAULTS["rapid"]), ("f_min_patients", DEFAULTS["min_patients"])):
        ss.setdefault(key, int(value) if isinstance(value, float) else value)
    _seed_from_url(bounds, list(clinic_names), specialties)

    bar = st.sidebar
    bar.header("Filters")
    picked = bar.date_input("Period", min_value=bounds[0], max_value=bounds[1], key="f_period",
                            help="Measures count patients and tapers in this period. Default: the latest twelve whole "
                                 "calendar months of data (a calendar year when the data end on 31 December).")
    if isinstance(picked, tuple) and len(picked) == 2:
        ss["_last_period"] = picked
    else:
        bar.caption("Pick the last day of the period; the previous period is shown meanwhile.")
    start, end = ss.get("_last_period", last_year)
    chosen_clinics = bar.multiselect("Clinics", list(clinic_names), format_func=clinic_names.get, key="f_clinics",
                                     placeholder="All clinics")
    chosen_specialties = bar.multiselect("Specialties", specialties, key="f_specialties",
                                         format_func=lambda s: s or "(not recorded)", placeholder="All specialties")
    factor_set = bar.selectbox("MME conversion factors", list(dose.FACTOR_SETS), key="f_factors",
                               format_func=dose.FACTOR_SETS.get)
    exclusions = bar.toggle("Leave out cancer, hospice and sickle cell", key="f_exclusions",
                            help=f"On: {measures.EXCLUSIONS} are not counted (CDC 2022 scope).")
    min_patients = bar.number_input("Show clinicians with at least … patients", min_value=1, max_value=10_000,
                                    step=1, key="f_min_patients",
                                    help="Smaller clinicians still count in the pooled value and the limits; "
                                         "they are only left off the charts and tables.")
    with bar.expander("Thresholds"):
        low = st.number_input("Dose threshold (MME a day)", 1, 1000, step=5, key="f_low",
                              help="CDC 2022: reassess benefits and risks, offer naloxone (default 50).")
        high = st.number_input("High-dose threshold (MME a day)", 1, 1000, step=5, key="f_high",
                               help="CDC 2022: avoid increasing to this dose without justification (default 90).")
        gradual = st.number_input("Gradual taper: at most (% of baseline a month)", 1, 100, step=1,
                                  key="f_gradual", help="HHS 2019 / CDC 2022: about 10% a month (default).")
        rapid = st.number_input("Rapid taper: more than (% of baseline a month)", 1, 100, step=1,
                                key="f_rapid", help="About 10% a week (default 40).")
        # Contradictory pairs are refused, not used: the last pair that made sense stays in force.
        low, high = _ordered_pair(bar, "doses", low, high, "The dose threshold ({0} MME) must be below the "
                                  "high-dose threshold ({1} MME)", "MME a day")
        gradual, rapid = _ordered_pair(bar, "paces", gradual, rapid, "The gradual pace ({0}%/month) must be "
                                       "below the rapid pace ({1}%/month)", "% a month")

    allowed = directory
    if chosen_clinics:
        allowed = allowed[allowed["clinic_id"].isin(chosen_clinics)]
    if chosen_specialties:
        allowed = allowed[allowed["specialty"].isin(chosen_specialties)]
    pseudonyms, codes = identities(tuple(directory["clinician_id"]))
    v = viewer.current()
    shown = pseudonyms
    if v is not None and v.names:    # a role that may see who is who (analysis/access.py)
        names = data.query("clinician_names")
        shown = {**pseudonyms, **{i: n for i, n in zip(names["clinician_id"], names["clinician_name"]) if n}}
    f = Filters(start, end, bounds[0], bounds[1], tuple(chosen_clinics), tuple(chosen_specialties), factor_set,
                float(low), float(high), float(gradual), float(rapid), bool(exclusions), int(min_patients),
                frozenset(allowed["clinician_id"]) if chosen_clinics or chosen_specialties else None,
                labels=shown, clinic_names=clinic_names, codes=codes)

    url = _to_url(f)
    st.query_params.from_dict(url)
    ss[WRITTEN] = url
    ss[STATE] = f
    return f


def default_period(bounds: tuple[dt.date, dt.date]) -> tuple[dt.date, dt.date]:
    """The latest twelve whole calendar months of data (analysis.coverage.default_period)."""
    return coverage.default_period(*bounds)


def default() -> Filters | None:
    """The filters a new visitor starts with (no widgets drawn): for warming the cache at start-up."""
    bounds_row = data.query("data_bounds").iloc[0]
    if bounds_row["data_end"] is None:
        return None
    bounds = (bounds_row["data_start"], bounds_row["data_end"])
    directory = data.query("clinician_directory")
    pseudonyms, codes = identities(tuple(directory["clinician_id"]))
    return Filters(*default_period(bounds), *bounds, labels=pseudonyms,
                   clinic_names=dict(zip(directory["clinic_id"], directory["clinic_name"])), codes=codes)


@st.cache_data(show_spinner=False)
def identities(clinician_ids: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """Per clinician id: the pseudonym ("Clinician 7KQ2F") and its code ("7KQ2F", for links), computed once
    per process."""
    pseudonyms = privacy.pseudonyms(clinician_ids, privacy.pseudonym_secret())
    return pseudonyms, {i: p.split(" ", 1)[1] for i, p in pseudonyms.items()}

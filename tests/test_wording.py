"""Small words a leader trips over (issue: readable screens, section 4): counts with their noun in the right
number, and a change that rounds to nothing said as "no change", not "↑ +0"."""
from analysis.display import counted
from dashboard.views.overview import NO_CHANGE, _delta


def test_counts_take_their_noun_in_the_right_number():
    assert counted(1, "taper") == "1 taper"
    assert counted(0, "taper") == "0 tapers"
    assert counted(1200, "patient") == "1,200 patients"
    assert counted(1, "taper or discontinuation") == "1 taper or discontinuation"
    assert counted(3, "taper or discontinuation") == "3 tapers or discontinuations"
    assert counted(2, "child", "children") == "2 children"


def test_a_change_that_rounds_to_nothing_is_no_change():
    assert _delta(12, 12, percent=False) == NO_CHANGE
    assert _delta(12.2, 12.0, percent=False) == NO_CHANGE        # +0 after rounding to a whole count
    assert _delta(0.5004, 0.5, percent=True) == NO_CHANGE        # +0.0 points
    assert _delta(13, 12, percent=False) == "+1"
    assert _delta(0.40, 0.45, percent=True) == "-5.0 points"
    assert _delta(12, None, percent=False) is None

"""Hypothesis strategies shared by the Whisper tests (no tests here): valid archive lists and
point streams that hit every corner whisper has (wrap-around, duplicates, too-old and future
points)."""
import math

from hypothesis import strategies as st

METHODS = ("average", "sum", "last", "max", "min", "avg_zero", "absmax", "absmin")
BASE_NOW = 1_600_000_000


@st.composite
def archive_lists(draw, max_archives=4, max_points=40):
    """Valid (secondsPerPoint, points) lists, small so rings wrap often."""
    count = draw(st.integers(1, max_archives))
    steps = [draw(st.sampled_from([1, 2, 5, 10, 60]))]
    for _ in range(count - 1):
        steps.append(steps[-1] * draw(st.integers(2, 5)))
    archives = []
    for index, step in enumerate(steps):
        low = 2
        if index + 1 < count:
            low = max(low, steps[index + 1] // step)
        if archives:
            prev_step, prev_points = archives[-1]
            low = max(low, prev_step * prev_points // step + 1)
        archives.append((step, draw(st.integers(low, max(low, max_points)))))
    return archives


values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e300, -1e300, math.nan]),
    st.integers(-1000, 1000).map(float),
)


def ages(max_retention):
    """now - timestamp: mostly inside retention, some too old, some in the future."""
    return st.one_of(
        st.integers(-5, max_retention + 5),
        st.integers(max_retention, 3 * max_retention),
        st.integers(-max_retention, 0),
        st.sampled_from([max_retention, max_retention - 1, 0, -1]),
    )


@st.composite
def point_batches(draw, max_retention, max_size=30):
    """A list of (age, value, fraction) points; repeated ages make duplicates likely, and a
    fraction is subtracted from the timestamp (whisper truncates it with int())."""
    drawn = draw(st.lists(ages(max_retention), min_size=1, max_size=max_size))
    if draw(st.booleans()):
        drawn = drawn + draw(st.lists(st.sampled_from(drawn), max_size=8))
    return [(age, draw(values), draw(st.sampled_from([0.0, 0.0, 0.25, 0.75]))) for age in drawn]

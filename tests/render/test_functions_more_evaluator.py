"""The added windowed functions through the real evaluator over whisper files, against graphite-web.

graphite-web re-evaluates their first argument over another time range;
Carbyne plans that range as a window and reads it once (see
test_evaluator.py for the fixtures: two fine 10 s + 1 min files, one
coarse 1 min file, gaps, carbon's cache).
"""

from __future__ import annotations

import pytest
from test_evaluator import LONG, NOW, RECENT, assert_like_graphite, data_dir, graphite  # noqa: F401

TARGETS = [
    ['timeStack(srv.*.cpu,"10min",0,3)'],
    ['timeStack(srv.db1.cpu,"1h",1,3)'],
    ['averageSeries(timeStack(srv.web1.cpu,"5min",0,4))'],
    ['holtWintersForecast(srv.web1.cpu,"10min","2min")'],
    ['holtWintersConfidenceBands(srv.*.cpu,3,"10min","5min")'],
    ['holtWintersAberration(srv.web2.cpu,1,"10min","2min")'],
    ['holtWintersConfidenceArea(srv.db1.cpu,2,"30min","10min")'],
    ["linearRegression(srv.*.cpu)"],
    [f'linearRegression(srv.web1.cpu,"{NOW - 2400}","{NOW - 1200}")'],
    ['smartSummarize(srv.*.cpu,"5min","avg","hours")'],
    ['smartSummarize(srv.web1.cpu,"2min","max","minutes")'],
    ['smartSummarize(srv.db1.cpu,"7min")'],
    ["sumSeriesWithWildcards(srv.*.cpu,1)", "reduceSeries(mapSeries(srv.db1.*,1),\"diffSeries\",2,\"mem\",\"cpu\")"],
    ["weightedAverage(srv.web*.cpu,srv.web*.cpu,1)", "powSeries(srv.db1.*)"],
    ["stdev(srv.web1.cpu,5)", "interpolate(srv.web2.cpu)", "compressPeriodicGaps(srv.db1.cpu)"],
]


@pytest.mark.parametrize("window", [RECENT, LONG], ids=["recent", "long"])
@pytest.mark.parametrize("targets", TARGETS, ids=lambda t: " & ".join(t))
def test_like_graphite(data_dir, graphite, targets, window) -> None:  # noqa: F811
    assert_like_graphite(data_dir, graphite, targets, window)


STACKED_CALLS = [
    # each shifted range is read on its own, so each copy keeps the archive graphite's does
    ['timeStack(srv.web1.cpu,"20min",0,3)'],
    # a call inside is evaluated anew per shift: each copy integrates / averages from its own start
    ['timeStack(integral(srv.web1.cpu),"10min",0,3)'],
    ['timeStack(movingAverage(srv.*.cpu,3),"5min",1,3)'],
    ['timeStack(nonNegativeDerivative(srv.db1.cpu),"1h",0,2)', 'timeStack(timeShift(srv.web2.cpu,"5min"),"10min",0,2)'],
    ['sumSeries(timeStack(summarize(srv.web1.cpu,"5min","sum"),"15min",0,3))'],
    # shifts older than the files' retention give no series, as whisper reads nothing there
    ['timeStack(srv.*.cpu,"2d",0,3)', 'timeStack(integral(srv.db1.cpu),"400d",0,2)'],
]


@pytest.mark.parametrize("window", [RECENT, LONG], ids=["recent", "long"])
@pytest.mark.parametrize("targets", STACKED_CALLS, ids=lambda t: " & ".join(t))
def test_time_stack_evaluates_its_argument_per_shift_like_graphite(data_dir, graphite, targets,  # noqa: F811
                                                                   window) -> None:
    assert_like_graphite(data_dir, graphite, targets, window)

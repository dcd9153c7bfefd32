"""HTTP views of the render API, one blueprint per API area.

``render`` (/render), ``metrics`` (/metrics/find, /metrics/expand,
/metrics/index.json), ``functions`` (/functions) and ``version`` (/version).
They share :mod:`render.views.params` (graphite's merged GET+POST
parameters) and :mod:`render.views.errors` (400s in the requested format).
"""

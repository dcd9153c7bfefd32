"""Graph images (PNG, SVG, PDF) in graphite-web's style, drawn with matplotlib.

:func:`render_graph` is the entry point the ``/render`` view calls for
``format=png|svg|pdf`` (:func:`render_pie` for ``graphType=pie``); :class:`GraphOptions` parses and validates graphite's
graph parameters.
"""

from render.graphs.draw import CONTENT_TYPES, render_graph, render_pie
from render.graphs.options import GraphOptionError, GraphOptions
from render.graphs.pie import PieOptions, literal_slice, pie_value

__all__ = [
    "CONTENT_TYPES", "GraphOptionError", "GraphOptions", "PieOptions", "literal_slice", "pie_value", "render_graph",
    "render_pie",
]

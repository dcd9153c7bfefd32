"""Graph images (PNG, SVG, PDF) in graphite-web's style, drawn with matplotlib.

:func:`render_graph` is the entry point the ``/render`` view calls for
``format=png|svg|pdf``; :class:`GraphOptions` parses and validates graphite's
graph parameters.
"""

from render.graphs.draw import CONTENT_TYPES, render_graph
from render.graphs.options import GraphOptionError, GraphOptions

__all__ = ["CONTENT_TYPES", "GraphOptionError", "GraphOptions", "render_graph"]

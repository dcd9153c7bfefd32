"""Render functions: one module per graphite group, one registry for all of them.

Use :func:`default_registry` to look functions up, bind and validate their
arguments (:meth:`Registry.call`), ask which extra window they need
(:meth:`Registry.window`) and describe them for ``/functions``.
"""

from render.functions.params import InputError, Param, ParamType
from render.functions.registry import (
    BoundCall,
    Registry,
    RequestContext,
    SeriesFunction,
    default_registry,
    series_function,
)

__all__ = [
    "BoundCall",
    "InputError",
    "Param",
    "ParamType",
    "Registry",
    "RequestContext",
    "SeriesFunction",
    "default_registry",
    "series_function",
]

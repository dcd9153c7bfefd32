"""Graphite's events: a durable store, graphite-web's ``/events`` HTTP API, and the series built from them."""

"""Carbyne's storage layer: the Whisper file format, retention schemas, metric paths and the finder."""

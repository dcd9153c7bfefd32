"""Temporary single import point for the whisper API used by the CLI (until storage.whisper lands)."""
import whisper  # noqa: F401

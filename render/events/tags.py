"""How graphite-web turns an event's stored tag string into the tags it can be found by.

graphite-web keeps two views of an event's tags and Carbyne keeps both:

* the stored string (a posted list is joined with spaces), which ``get_data``
  returns split on whitespace only, and
* the tag index django-tagging builds from that string, which ``?tags=``
  filtering and the ``events()`` render function search. django-tagging splits
  on commas when the string holds an unquoted comma, on spaces otherwise, and
  keeps double-quoted phrases whole.

So ``"myapp,production,deploy"`` is returned as the single tag
``["myapp,production,deploy"]`` yet found by ``?tags=deploy``.
"""

from __future__ import annotations


def _split_strip(text: str, delimiter: str) -> list[str]:
    return [word.strip() for word in text.split(delimiter) if word.strip()]


def _quoted_and_loose(text: str) -> tuple[list[str], list[str], bool]:
    """Quoted phrases, unquoted chunks, and whether an unquoted comma was seen.

    An opening quote that is never closed leaves its text unquoted; a comma
    inside that text then counts as a loose comma.
    """
    quoted: list[str] = []
    loose: list[str] = []
    saw_loose_comma = False
    position = 0
    while position < len(text):
        opening = text.find('"', position)
        if opening < 0:
            chunk = text[position:]
            saw_loose_comma = saw_loose_comma or "," in chunk
            loose.append(chunk)
            break
        closing = text.find('"', opening + 1)
        if closing < 0:
            before, after = text[position:opening], text[opening + 1:]
            saw_loose_comma = saw_loose_comma or "," in before or "," in after
            loose.extend(chunk for chunk in (before, after) if chunk)
            break
        before = text[position:opening]
        if before:
            saw_loose_comma = saw_loose_comma or "," in before
            loose.append(before)
        phrase = text[opening + 1:closing].strip()
        if phrase:
            quoted.append(phrase)
        position = closing + 1
    return quoted, loose, saw_loose_comma


def index_tags(stored: str) -> list[str]:
    """The sorted, distinct tag names django-tagging indexes for ``stored``."""
    if not stored:
        return []
    if "," not in stored and '"' not in stored:
        return sorted(set(_split_strip(stored, " ")))
    quoted, loose, saw_loose_comma = _quoted_and_loose(stored)
    delimiter = "," if saw_loose_comma else " "
    words = list(quoted)
    for chunk in loose:
        words.extend(_split_strip(chunk, delimiter))
    return sorted(set(words))


def returned_tags(stored: str) -> list[str]:
    """The tags graphite-web returns for ``stored``: split on whitespace only."""
    return stored.split()

"""Data-only unpickling for the pickle receiver: lists, tuples, numbers and strings.

Carbon's SafeUnpickler still lets ``copy_reg._reconstructor`` and ``object``
through; this one imports nothing at all. Before CPython's unpickler sees a
payload, :func:`screen_pickle` walks its opcodes and refuses any that import,
call or build objects (GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ*,
EXT*), persistent ids, out-of-band buffers, truncation, and memo indexes larger
than the payload: CPython sizes its memo table from the largest index it is
told to use, so a 7-byte pickle can otherwise make it allocate gigabytes.
``find_class`` refuses everything as a second line of defence.

Python 2 ``str`` (protocol 0-2 ``S``/``U``/``T`` opcodes, as StatsD sends) load
as ``bytes``; Python 3 ``bytes`` pickled at protocol 0-2 need a global
(``_codecs.encode``) and are therefore refused.
"""
from __future__ import annotations

import io
import pickle

try:
    from native.carbon_parse import screen_pickle as native_screen_pickle
except ImportError:  # the pure twin below serves when the extension is not built
    native_screen_pickle = None

DEFAULT_MAX_PICKLE_BYTES = 1 << 20

# How to step over each opcode's argument (the layout pickletools documents).
_NO_ARGUMENT = b"N\x88\x89]ael)t\x85\x86\x87}dsu\x8f\x90\x91021(\x94"
_FIXED_ARGUMENT = {
    **dict.fromkeys(b"Khq\x80", 1),
    **dict.fromkeys(b"M", 2),
    **dict.fromkeys(b"Jjr", 4),
    **dict.fromkeys(b"G\x95", 8),
}
_LENGTH_PREFIXED = {
    **dict.fromkeys(b"\x8aUC\x8c", 1),
    **dict.fromkeys(b"\x8bTBX", 4),
    **dict.fromkeys(b"\x8e\x8d\x96", 8),
}
_NEWLINE_ARGUMENT = b"ILSVFgp"
_REFUSED = b"c\x93Rbio\x81\x92\x82\x83\x84PQ\x97\x98"
_STOP = ord(".")
_PUT, _LONG_BINPUT, _FRAME = ord("p"), ord("r"), 0x95


class RefusedPickle(ValueError):
    """A pickle payload that is not plain data, is too large, or does not load."""


def screen_pickle_py(payload: bytes) -> tuple[str, int] | None:
    """None when every opcode up to STOP is allowed, else ``(problem, offset)``.

    Pure twin of ``native.carbon_parse.screen_pickle``.
    """
    size = len(payload)
    pos = 0
    while pos < size:
        where = pos
        op = payload[pos]
        pos += 1
        if op == _STOP:
            return None
        if op in _REFUSED:
            return "refused opcode", where
        if op in _NO_ARGUMENT:
            continue
        if op in _FIXED_ARGUMENT:
            width = _FIXED_ARGUMENT[op]
            if size - pos < width:
                return "truncated", where
            number = int.from_bytes(payload[pos:pos + width], "little")
            pos += width
            if op == _LONG_BINPUT and number > size:
                return "memo index too large", where
            if op == _FRAME and number > size - pos:
                return "truncated", where
        elif op in _NEWLINE_ARGUMENT:
            end = payload.find(b"\n", pos)
            if end < 0:
                return "truncated", where
            if op == _PUT:
                digits = payload[pos:end]
                if not 0 < len(digits) <= 18 or not digits.isdigit() or int(digits) > size:
                    return "memo index too large", where
            pos = end + 1
        elif op in _LENGTH_PREFIXED:
            width = _LENGTH_PREFIXED[op]
            if size - pos < width:
                return "truncated", where
            length = int.from_bytes(payload[pos:pos + width], "little")
            pos += width
            if length > size - pos:
                return "truncated", where
            pos += length
        else:
            return "unknown opcode", where
    return "truncated", size


screen_pickle = native_screen_pickle if native_screen_pickle is not None else screen_pickle_py


class _DataOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can resolve no global name whatsoever."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


def loads(payload: bytes, max_bytes: int = DEFAULT_MAX_PICKLE_BYTES) -> object:
    """Unpickle plain data from ``payload`` or raise :class:`RefusedPickle`."""
    if len(payload) > max_bytes:
        raise RefusedPickle(
            f"cannot unpickle payload={len(payload)} bytes: over the {max_bytes}-byte limit"
        )
    problem = screen_pickle(payload)
    if problem is not None:
        reason, offset = problem
        opcode = payload[offset:offset + 1]
        raise RefusedPickle(f"cannot unpickle payload at offset={offset} ({opcode!r}): {reason}")
    try:
        return _DataOnlyUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except Exception as exc:  # the unpickler raises many types for malformed data
        raise RefusedPickle(
            f"cannot unpickle payload={len(payload)} bytes: {type(exc).__name__}: {exc}"
        ) from exc

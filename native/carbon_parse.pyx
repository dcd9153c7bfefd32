# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Carbon ingest kernels: plaintext lines, raw-name spellings, pickle opcode screening.

Twins: ``carbon.parse.parse_lines_py`` (lines), ``carbon.names.SpellingCache``
(spellings), ``carbon.unpickle.screen_pickle_py`` (pickle screening),
``float(bytes)`` (numbers). The line loop and the pickle walk run without the
GIL and without a Python object per line; Python is entered only for names the
spelling table has not seen and for rejects.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memchr, memcmp, memcpy, memset

import numpy as np

cimport numpy as cnp

cnp.import_array()


cdef extern from "<locale.h>" nogil:
    ctypedef void* locale_t
    int LC_ALL_MASK
    locale_t newlocale(int category_mask, const char* locale, locale_t base)
    void freelocale(locale_t loc)


cdef extern from "<stdlib.h>" nogil:
    double strtod_l(const char* nptr, char** endptr, locale_t loc)


cdef extern from "<math.h>" nogil:
    double NAN
    double INFINITY
    bint isnan(double x)
    bint isinf(double x)


cdef enum:
    # Bytes kept from a rejected line (carbon logs 400 characters; we keep less).
    SAMPLE_BYTES = 200
    # Reasons, in the order carbon.parse checks them (indexes into REASONS).
    R_TOO_LONG = 0
    R_MALFORMED = 1
    R_BAD_VALUE = 2
    R_BAD_TIMESTAMP = 3
    R_NAN = 4
    R_INF = 5
    R_BAD_NAME = 6
    E_UNKNOWN_NAME = 7
    E_TEXT_LINE = 8         # a line that reads differently as text: carbon.parse.parse_line reads it

# Whisper stores uint32 timestamps.
cdef double MAX_TIMESTAMP = 4294967296.0
# Largest integer every double holds exactly (2**53), and the exact powers of ten.
cdef uint64_t EXACT_MANTISSA = 9007199254740992ULL
cdef double[23] EXACT_POWERS_OF_TEN = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]
REASONS = ("line_too_long", "malformed_line", "bad_value", "bad_timestamp",
           "nan_value", "inf_value", "bad_name")


# ---------------------------------------------------------------- spellings

cdef struct Slot:
    uint64_t hash
    int64_t metric_id
    Py_ssize_t offset
    Py_ssize_t length      # -1 marks an empty slot


cdef inline uint64_t _load64(const uint8_t* p) noexcept nogil:
    cdef uint64_t word
    memcpy(&word, p, 8)
    return word


cdef inline uint64_t hash_bytes(const uint8_t* p, Py_ssize_t n, uint64_t seed) noexcept nogil:
    """Multiply-rotate hash over 8-byte words, with a per-table seed against flooding."""
    cdef uint64_t h = seed ^ (<uint64_t>n * 0x9E3779B97F4A7C15ULL)
    cdef uint64_t tail = 0
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        h = (h ^ _load64(p + i)) * 0xFF51AFD7ED558CCDULL
        h = (h << 31) | (h >> 33)
        i += 8
    if i < n:
        memcpy(&tail, p + i, n - i)
        h = (h ^ tail) * 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 29
    return h


cdef class SpellingTable:
    """Bounded C hash table of raw name spellings (bytes) to metric ids.

    Same interface as ``carbon.names.SpellingCache``: forgets everything when
    ``limit`` spellings are held, since it is only a cache in front of the index.
    """
    cdef Slot* slots
    cdef Py_ssize_t mask
    cdef Py_ssize_t count
    cdef readonly Py_ssize_t limit
    cdef uint8_t* arena
    cdef Py_ssize_t arena_used
    cdef Py_ssize_t arena_size
    cdef uint64_t seed

    def __cinit__(self, Py_ssize_t limit=1 << 20):
        if limit < 1:
            raise ValueError(f"cannot use spelling limit={limit}: must be at least 1")
        import secrets
        self.limit = limit
        self.seed = secrets.randbits(64)
        self.slots = NULL
        self.arena = NULL
        self._allocate(64, 4096)

    def __dealloc__(self):
        free(self.slots)
        free(self.arena)

    cdef int _allocate(self, Py_ssize_t capacity, Py_ssize_t arena_size) except -1:
        cdef Slot* slots = <Slot*>malloc(capacity * sizeof(Slot))
        cdef uint8_t* arena = <uint8_t*>malloc(arena_size)
        cdef Py_ssize_t i
        if slots == NULL or arena == NULL:
            free(slots)
            free(arena)
            raise MemoryError("cannot allocate spelling table")
        for i in range(capacity):
            slots[i].length = -1
        free(self.slots)
        free(self.arena)
        self.slots = slots
        self.mask = capacity - 1
        self.arena = arena
        self.arena_size = arena_size
        self.arena_used = 0
        self.count = 0
        return 0

    cdef inline int64_t find(self, const uint8_t* p, Py_ssize_t n, uint64_t h) noexcept nogil:
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>self.mask)
        cdef Slot* slot
        while True:
            slot = &self.slots[i]
            if slot.length < 0:
                return -1
            if slot.hash == h and slot.length == n and memcmp(self.arena + slot.offset, p, n) == 0:
                return slot.metric_id
            i = (i + 1) & self.mask

    cdef int _place(self, uint64_t h, int64_t metric_id, Py_ssize_t offset, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>self.mask)
        while self.slots[i].length >= 0:
            i = (i + 1) & self.mask
        self.slots[i].hash = h
        self.slots[i].metric_id = metric_id
        self.slots[i].offset = offset
        self.slots[i].length = n
        self.count += 1
        return 0

    cdef int _grow_slots(self) except -1:
        cdef Py_ssize_t old_capacity = self.mask + 1
        cdef Py_ssize_t capacity = old_capacity * 2
        cdef Slot* old = self.slots
        cdef Slot* slots = <Slot*>malloc(capacity * sizeof(Slot))
        cdef Py_ssize_t i
        if slots == NULL:
            raise MemoryError("cannot grow spelling table")
        for i in range(capacity):
            slots[i].length = -1
        self.slots = slots
        self.mask = capacity - 1
        self.count = 0
        for i in range(old_capacity):
            if old[i].length >= 0:
                self._place(old[i].hash, old[i].metric_id, old[i].offset, old[i].length)
        free(old)
        return 0

    cdef int insert(self, const uint8_t* p, Py_ssize_t n, int64_t metric_id) except -1:
        cdef uint64_t h = hash_bytes(p, n, self.seed)
        cdef Py_ssize_t size
        cdef uint8_t* arena
        if self.find(p, n, h) >= 0:
            return 0
        if self.count >= self.limit:
            self.clear()
        if (self.count + 1) * 2 > self.mask + 1:
            self._grow_slots()
        if self.arena_used + n > self.arena_size:
            size = self.arena_size * 2
            while self.arena_used + n > size:
                size *= 2
            arena = <uint8_t*>realloc(self.arena, size)
            if arena == NULL:
                raise MemoryError("cannot grow spelling arena")
            self.arena = arena
            self.arena_size = size
        memcpy(self.arena + self.arena_used, p, n)
        self._place(h, metric_id, self.arena_used, n)
        self.arena_used += n
        return 0

    def get(self, const uint8_t[::1] raw not None) -> int:
        """The id cached for ``raw``, or -1."""
        cdef Py_ssize_t n = raw.shape[0]
        cdef const uint8_t* p = &raw[0] if n else <const uint8_t*>b""
        return self.find(p, n, hash_bytes(p, n, self.seed))

    def add(self, const uint8_t[::1] raw not None, int64_t metric_id) -> None:
        cdef Py_ssize_t n = raw.shape[0]
        self.insert(&raw[0] if n else <const uint8_t*>b"", n, metric_id)

    def clear(self) -> None:
        cdef Py_ssize_t i
        for i in range(self.mask + 1):
            self.slots[i].length = -1
        self.count = 0
        self.arena_used = 0

    def __len__(self):
        return self.count


# ---------------------------------------------------------------- numbers

cdef inline bint is_space(uint8_t c) noexcept nogil:
    """ASCII whitespace as bytes.split() sees it."""
    return c == 32 or (9 <= c <= 13)


cdef extern from *:
    int count_trailing_zeros "__builtin_ctzll"(unsigned long long x) nogil
    void prefetch "__builtin_prefetch"(const void* address) nogil

# Bytes 0x21 in every lane, and the lanes' high bits: for spotting a byte <= 0x20 eight at a time.
cdef uint64_t LANES_0x21 = 0x2121212121212121ULL
cdef uint64_t LANES_HIGH = 0x8080808080808080ULL


cdef inline Py_ssize_t field_end(const uint8_t* buf, Py_ssize_t i, Py_ssize_t line_end,
                                 Py_ssize_t n, uint64_t* seen, bint* text_only) noexcept nogil:
    """Where the field starting at ``i`` ends: the first whitespace byte, or ``line_end``.

    Whitespace is at most 0x20, so eight bytes at a time are tested for a byte
    below 0x21 (the lowest flagged lane is exact); a control byte that is not
    whitespace stays part of the field. Loads stay inside the chunk (``n``); a
    flagged byte is never past ``line_end``, which holds a newline or is ``n``.

    Bytes that str.split() or float() of a str could read differently: every byte
    looked at is OR-ed into ``seen`` (a high bit there means a byte above 0x7f; the
    words can reach into the next line, which at worst sends this one to the exact
    text path), and ``text_only`` is set on 0x1c-0x1f.
    """
    cdef uint64_t word, low
    while i < line_end:
        if i + 8 <= n:
            word = _load64(buf + i)
            seen[0] |= word
            low = (word - LANES_0x21) & ~word & LANES_HIGH
            if low == 0:
                i += 8
                continue
            i += count_trailing_zeros(low) >> 3
        else:
            while i < line_end and buf[i] > 32:
                seen[0] |= buf[i]
                i += 1
        if i >= line_end:
            return line_end
        if is_space(buf[i]):
            return i
        if 28 <= buf[i] <= 31:
            text_only[0] = True
        i += 1
    return line_end


cdef inline bint is_digit(uint8_t c) noexcept nogil:
    return 48 <= c <= 57


cdef inline uint8_t lower(uint8_t c) noexcept nogil:
    return c | 0x20 if 65 <= c <= 90 else c


cdef bint matches_word(const uint8_t* p, Py_ssize_t n, const char* word) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if word[i] == 0 or lower(p[i]) != <uint8_t>word[i]:
            return False
    return word[n] == 0


cdef bint parse_number(const uint8_t* p, Py_ssize_t n, char* scratch,
                       locale_t c_locale, double* out) noexcept nogil:
    """Parse ``p[:n]`` exactly as Python's float(bytes) would; False when it refuses.

    Accepts an optional sign, then ``inf``/``infinity``/``nan`` in any case, or a
    decimal with optional fraction and exponent, single ``_`` only between digits.
    Refuses what strtod alone would take (hex, ``nan(...)``, leading space).
    Short decimals take Clinger's exact fast path; the rest go to strtod_l in the
    C locale, which like Python's dtoa rounds correctly.
    """
    cdef Py_ssize_t i = 0, kept = 0, digits = 0, frac_digits = 0
    cdef bint negative = False, mantissa_exact = True, seen_dot = False
    cdef uint64_t mantissa = 0
    cdef int64_t exponent = 0
    cdef bint exponent_negative = False
    cdef uint8_t c
    cdef double value
    cdef int64_t power
    if n == 0:
        return False
    if p[0] == 43 or p[0] == 45:        # '+' '-'
        negative = p[0] == 45
        i = 1
    if i == n:
        return False
    c = lower(p[i])
    if c == 105 or c == 110:            # 'i' 'n'
        if matches_word(p + i, n - i, b"inf") or matches_word(p + i, n - i, b"infinity"):
            out[0] = -INFINITY if negative else INFINITY
            return True
        if matches_word(p + i, n - i, b"nan"):
            out[0] = NAN
            return True
        return False
    if i:
        scratch[0] = <char>p[0]
        kept = 1
    # mantissa: digits [. digits], underscores only between two digits
    while i < n:
        c = p[i]
        if is_digit(c):
            digits += 1
            if seen_dot:
                frac_digits += 1
            if mantissa_exact:
                if mantissa <= (EXACT_MANTISSA - 9) // 10:
                    mantissa = mantissa * 10 + (c - 48)
                else:
                    mantissa_exact = False
            scratch[kept] = <char>c
            kept += 1
        elif c == 95:                   # '_'
            if i == 0 or i + 1 >= n or not is_digit(p[i - 1]) or not is_digit(p[i + 1]):
                return False
        elif c == 46 and not seen_dot:  # '.'
            seen_dot = True
            scratch[kept] = <char>c
            kept += 1
        else:
            break
        i += 1
    if digits == 0:
        return False
    if i < n:
        if lower(p[i]) != 101:          # 'e'
            return False
        scratch[kept] = <char>p[i]
        kept += 1
        i += 1
        if i < n and (p[i] == 43 or p[i] == 45):
            exponent_negative = p[i] == 45
            scratch[kept] = <char>p[i]
            kept += 1
            i += 1
        if i == n or not is_digit(p[i]):
            return False
        while i < n:
            c = p[i]
            if is_digit(c):
                if exponent < 100000:
                    exponent = exponent * 10 + (c - 48)
                scratch[kept] = <char>c
                kept += 1
            elif c == 95:
                if i + 1 >= n or not is_digit(p[i - 1]) or not is_digit(p[i + 1]):
                    return False
            else:
                return False
            i += 1
    if exponent_negative:
        exponent = -exponent
    power = exponent - frac_digits
    if mantissa_exact and mantissa == 0:
        value = 0.0
    elif mantissa_exact and -22 <= power <= 22:
        value = <double>mantissa
        if power >= 0:
            value = value * EXACT_POWERS_OF_TEN[power]
        else:
            value = value / EXACT_POWERS_OF_TEN[-power]
    else:
        scratch[kept] = 0
        out[0] = strtod_l(scratch, NULL, c_locale)
        return True
    out[0] = -value if negative else value
    return True


def parse_float(const uint8_t[::1] field not None):
    """float(field), or None where float() raises; like float(), ignores surrounding whitespace."""
    cdef Py_ssize_t start = 0, n = field.shape[0]
    cdef char* scratch = <char*>malloc(n + 2)
    cdef locale_t c_locale = newlocale(LC_ALL_MASK, b"C", <locale_t>NULL)
    cdef double value = 0.0
    cdef bint ok
    if scratch == NULL or c_locale == NULL:
        free(scratch)
        raise MemoryError("cannot allocate number scratch buffer")
    while start < n and is_space(field[start]):
        start += 1
    while n > start and is_space(field[n - 1]):
        n -= 1
    ok = parse_number(&field[start] if n > start else <const uint8_t*>b"", n - start,
                      scratch, c_locale, &value)
    free(scratch)
    freelocale(c_locale)
    return value if ok else None


# ---------------------------------------------------------------- lines

cdef struct Event:
    int kind                # a reason index, or E_UNKNOWN_NAME
    Py_ssize_t line_start
    Py_ssize_t line_end
    Py_ssize_t name_start
    Py_ssize_t name_end
    Py_ssize_t point        # output slot awaiting a name


cdef Py_ssize_t count_lines(const uint8_t* buf, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t lines = 1
    cdef const uint8_t* p = buf
    cdef const uint8_t* end = buf + n
    cdef const void* hit
    while p < end:
        hit = memchr(p, 10, end - p)
        if hit == NULL:
            break
        lines += 1
        p = <const uint8_t*>hit + 1
    return lines


cdef Py_ssize_t scan_lines(
        const uint8_t* buf, Py_ssize_t n, double now, Py_ssize_t max_line_length,
        SpellingTable table, char* scratch, locale_t c_locale,
        int64_t* ids, double* timestamps, double* values, Event* names,
        Event* events, Py_ssize_t* event_count) noexcept nogil:
    """First pass: every line to a point or an event; returns the number of points.

    A point's id is left as its name's hash (its table slot prefetched) and ``names`` holds
    the E_UNKNOWN_NAME event it raises if resolve_names does not find it: looking the names
    up after the scan lets their cache misses overlap."""
    cdef Py_ssize_t pos = 0, start, end, points = 0, nevents = 0
    cdef Py_ssize_t f_start[3]
    cdef Py_ssize_t f_end[3]
    cdef Py_ssize_t fields, i
    cdef const void* hit
    cdef double value, timestamp
    cdef int reason
    cdef uint64_t hashed, seen
    cdef bint text_only
    while pos < n:
        start = pos
        hit = memchr(buf + pos, 10, n - pos)
        end = (<const uint8_t*>hit - buf) if hit != NULL else n
        pos = end + 1
        if end - start > max_line_length:
            reason = R_TOO_LONG
        else:
            fields = 0
            text_only = False
            seen = 0
            i = start
            while True:
                while i < end and is_space(buf[i]):
                    i += 1
                if i == end:
                    break
                if fields == 3:
                    fields = 4
                    if 28 <= buf[i] <= 31 or buf[i] > 127:  # whitespace to str.split()?
                        text_only = True
                    break
                f_start[fields] = i
                i = field_end(buf, i, end, n, &seen, &text_only)
                f_end[fields] = i
                fields += 1
            if text_only or seen & LANES_HIGH:  # its point slot is kept, in line order, for parse_lines to fill
                ids[points] = -1
                names[points].kind = E_TEXT_LINE
                names[points].line_start = start
                names[points].line_end = end
                names[points].point = points
                points += 1
                continue
            if fields == 0:
                continue
            if fields != 3:
                reason = R_MALFORMED
            elif not parse_number(buf + f_start[1], f_end[1] - f_start[1], scratch, c_locale, &value):
                reason = R_BAD_VALUE
            elif not parse_number(buf + f_start[2], f_end[2] - f_start[2], scratch, c_locale, &timestamp):
                reason = R_BAD_TIMESTAMP
            else:
                if -2.0 < timestamp <= -1.0:
                    timestamp = now
                if not (0.0 <= timestamp < MAX_TIMESTAMP):
                    reason = R_BAD_TIMESTAMP
                elif isnan(value):
                    reason = R_NAN
                elif isinf(value):
                    reason = R_INF
                else:
                    hashed = hash_bytes(buf + f_start[0], f_end[0] - f_start[0], table.seed)
                    prefetch(&table.slots[hashed & <uint64_t>table.mask])
                    ids[points] = <int64_t>hashed
                    names[points].kind = E_UNKNOWN_NAME
                    names[points].line_start = start
                    names[points].line_end = end
                    names[points].name_start = f_start[0]
                    names[points].name_end = f_end[0]
                    names[points].point = points
                    timestamps[points] = timestamp
                    values[points] = value
                    points += 1
                    continue
        events[nevents].kind = reason
        events[nevents].line_start = start
        events[nevents].line_end = end
        nevents += 1
    event_count[0] = nevents
    return points


cdef int compare_events(const void* a, const void* b) noexcept nogil:
    cdef Py_ssize_t x = (<const Event*>a).line_start
    cdef Py_ssize_t y = (<const Event*>b).line_start
    return (x > y) - (x < y)


cdef Py_ssize_t resolve_names(const uint8_t* buf, SpellingTable table, int64_t* ids, const Event* names,
                              Py_ssize_t points, Event* events, Py_ssize_t nevents) noexcept nogil:
    """Second pass: each point's hash in ``ids`` becomes its metric id, or -1 and its
    E_UNKNOWN_NAME event (after the scan's events); returns the events' new count. A text
    line's slot (E_TEXT_LINE) goes to the events as it is."""
    cdef Py_ssize_t k
    cdef int64_t metric_id
    for k in range(points):
        if names[k].kind == E_TEXT_LINE:
            events[nevents] = names[k]
            nevents += 1
            continue
        metric_id = table.find(buf + names[k].name_start, names[k].name_end - names[k].name_start,
                               <uint64_t>ids[k])
        ids[k] = metric_id
        if metric_id < 0:
            events[nevents] = names[k]
            nevents += 1
    return nevents


cdef bytes line_sample(const uint8_t* buf, Py_ssize_t start, Py_ssize_t end, Py_ssize_t raw_limit):
    """The reject sample: the line stripped and cut to SAMPLE_BYTES, or, when
    ``raw_limit`` is positive (over-long lines), its first ``raw_limit`` bytes."""
    cdef Py_ssize_t limit = raw_limit
    if raw_limit <= 0:
        limit = SAMPLE_BYTES
        while start < end and is_space(buf[start]):
            start += 1
        while end > start and is_space(buf[end - 1]):
            end -= 1
    if end - start > limit:
        end = start + limit
    return (<const char*>buf)[start:end]


def parse_lines(const uint8_t[::1] chunk not None, object index, double now,
                Py_ssize_t max_line_length, object make_reject, type bad_name_error,
                object parse_text_line):
    """Parse a chunk of ``name value timestamp`` lines.

    Returns ``(ids, timestamps, values, rejects)``; ``index.spellings`` must be a
    SpellingTable. Semantics are those of ``carbon.parse.parse_lines_py``; a line
    with bytes that read differently as text goes to ``parse_text_line``
    (``carbon.parse.parse_line``).
    """
    cdef SpellingTable table = index.spellings
    cdef Py_ssize_t n = chunk.shape[0]
    cdef const uint8_t* buf = &chunk[0] if n else <const uint8_t*>b""
    cdef Py_ssize_t capacity = count_lines(buf, n) if n else 0
    cdef Py_ssize_t points, nevents = 0, scanned, k, dropped = 0
    cdef Py_ssize_t too_long_sample = min(<Py_ssize_t>SAMPLE_BYTES, max_line_length + 1)
    cdef Event* events = <Event*>malloc((capacity + 1) * sizeof(Event))
    cdef Event* names = <Event*>malloc((capacity + 1) * sizeof(Event))
    cdef char* scratch = <char*>malloc((n if n < max_line_length else max_line_length) + 2)
    cdef locale_t c_locale = newlocale(LC_ALL_MASK, b"C", <locale_t>NULL)
    cdef cnp.ndarray ids_array = np.empty(capacity, dtype=np.int64)
    cdef cnp.ndarray ts_array = np.empty(capacity, dtype=np.float64)
    cdef cnp.ndarray value_array = np.empty(capacity, dtype=np.float64)
    cdef int64_t* ids = <int64_t*>cnp.PyArray_DATA(ids_array)
    cdef double* timestamps = <double*>cnp.PyArray_DATA(ts_array)
    cdef double* values = <double*>cnp.PyArray_DATA(value_array)
    cdef int64_t metric_id
    cdef Event* event
    cdef list rejects = []
    if events == NULL or names == NULL or scratch == NULL or c_locale == NULL:
        free(events)
        free(names)
        free(scratch)
        if c_locale != NULL:
            freelocale(c_locale)
        raise MemoryError("cannot allocate line parser buffers")
    try:
        # The scan keeps the GIL. A chunk is one socket read (carbon.protocols.READ_SIZE, well
        # under a millisecond of scanning); letting go of the GIL here costs the reactor a
        # second wait per chunk for the writer thread to hand it back (up to the switch
        # interval), which halved acceptance while the writer was busy.
        points = scan_lines(buf, n, now, max_line_length, table, scratch, c_locale,
                            ids, timestamps, values, names, events, &nevents)
        scanned = nevents
        nevents = resolve_names(buf, table, ids, names, points, events, nevents)
        if 0 < scanned < nevents:  # back to line order: rejects are reported as they came
            qsort(events, nevents, sizeof(Event), compare_events)
        for k in range(nevents):
            event = &events[k]
            if event.kind == E_TEXT_LINE:
                reason, name, value, timestamp = parse_text_line(
                    (<const char*>buf)[event.line_start:event.line_end], now)
                if reason is None:
                    try:
                        ids[event.point] = index.id_for(name)
                        timestamps[event.point] = timestamp
                        values[event.point] = value
                        continue
                    except bad_name_error:
                        reason = REASONS[R_BAD_NAME]
                if reason:
                    rejects.append(make_reject(reason, line_sample(buf, event.line_start, event.line_end, 0)))
                dropped += 1  # its slot's id stays -1
                continue
            if event.kind != E_UNKNOWN_NAME:
                rejects.append(make_reject(
                    REASONS[event.kind],
                    line_sample(buf, event.line_start, event.line_end,
                                too_long_sample if event.kind == R_TOO_LONG else 0)))
                continue
            metric_id = table.find(buf + event.name_start, event.name_end - event.name_start,
                                   hash_bytes(buf + event.name_start,
                                              event.name_end - event.name_start, table.seed))
            if metric_id < 0:
                try:
                    metric_id = index.id_for(
                        (<const char*>buf)[event.name_start:event.name_end])
                except bad_name_error:
                    rejects.append(make_reject(
                        REASONS[R_BAD_NAME],
                        line_sample(buf, event.line_start, event.line_end, 0)))
                    dropped += 1
            ids[event.point] = metric_id
    finally:
        free(events)
        free(names)
        free(scratch)
        freelocale(c_locale)
    ids_array = ids_array[:points]
    ts_array = ts_array[:points]
    value_array = value_array[:points]
    if dropped:
        keep = ids_array >= 0
        ids_array = ids_array[keep]
        ts_array = ts_array[keep]
        value_array = value_array[keep]
    return ids_array, ts_array, value_array, rejects


# ---------------------------------------------------------------- pickle screening

# Argument layout of each pickle opcode (see pickletools): how to skip it.
cdef enum:
    A_UNKNOWN = 0     # not an opcode
    A_NONE = 1
    A_FIXED = 2       # ARG_SIZE[op] bytes
    A_LEN1 = 3        # 1-byte length, then that many bytes
    A_LEN4 = 4        # 4-byte little-endian length, then that many bytes
    A_LEN8 = 5        # 8-byte little-endian length, then that many bytes
    A_LINE = 6        # up to and including the next newline
    A_REFUSED = 7     # imports, calls, persistent ids, out-of-band buffers
    A_STOP = 8

cdef uint8_t[256] ARG_KIND
cdef uint8_t[256] ARG_SIZE
memset(ARG_KIND, A_UNKNOWN, 256)
memset(ARG_SIZE, 0, 256)


cdef void _layout(const char* codes, uint8_t kind, uint8_t size):
    cdef Py_ssize_t i = 0
    while codes[i] != 0:
        ARG_KIND[<uint8_t>codes[i]] = kind
        ARG_SIZE[<uint8_t>codes[i]] = size
        i += 1


_layout(b"N\x88\x89]ael)t\x85\x86\x87}dsu\x8f\x90\x91021(\x94", A_NONE, 0)
_layout(b"Khq\x80", A_FIXED, 1)
_layout(b"M", A_FIXED, 2)
_layout(b"Jjr", A_FIXED, 4)
_layout(b"G\x95", A_FIXED, 8)
_layout(b"\x8aUC\x8c", A_LEN1, 0)
_layout(b"\x8bTBX", A_LEN4, 0)
_layout(b"\x8e\x8d\x96", A_LEN8, 0)
_layout(b"ILSVFgp", A_LINE, 0)
_layout(b"c\x93Rbio\x81\x92\x82\x83\x84PQ\x97\x98", A_REFUSED, 0)
_layout(b".", A_STOP, 0)

SCREEN_VERDICTS = (None, "truncated", "unknown opcode", "refused opcode", "memo index too large")
cdef enum:
    V_OK = 0
    V_TRUNCATED = 1
    V_UNKNOWN = 2
    V_REFUSED = 3
    V_MEMO = 4


cdef int screen(const uint8_t* p, Py_ssize_t n, Py_ssize_t* where) noexcept nogil:
    """Walk the opcodes up to STOP; the verdict index, and the offending offset in ``where``."""
    cdef Py_ssize_t pos = 0, arg_len, i
    cdef uint64_t length, memo
    cdef uint8_t op, kind
    cdef const void* hit
    while pos < n:
        where[0] = pos
        op = p[pos]
        kind = ARG_KIND[op]
        pos += 1
        if kind == A_STOP:
            return V_OK
        if kind == A_UNKNOWN:
            return V_UNKNOWN
        if kind == A_REFUSED:
            return V_REFUSED
        if kind == A_NONE:
            continue
        if kind == A_FIXED:
            arg_len = ARG_SIZE[op]
            if n - pos < arg_len:
                return V_TRUNCATED
            if op == 114 or op == 0x95:         # LONG_BINPUT, FRAME
                memo = 0
                for i in range(arg_len - 1, -1, -1):
                    memo = (memo << 8) | p[pos + i]
                if op == 114 and memo > <uint64_t>n:
                    return V_MEMO
                if op == 0x95 and memo > <uint64_t>(n - pos - arg_len):
                    return V_TRUNCATED
            pos += arg_len
        elif kind == A_LINE:
            hit = memchr(p + pos, 10, n - pos)
            if hit == NULL:
                return V_TRUNCATED
            arg_len = <const uint8_t*>hit - (p + pos)
            if op == 112:                       # PUT: plain decimal digits only
                if arg_len == 0 or arg_len > 18:
                    return V_MEMO
                memo = 0
                for i in range(arg_len):
                    if not is_digit(p[pos + i]):
                        return V_MEMO
                    memo = memo * 10 + (p[pos + i] - 48)
                if memo > <uint64_t>n:
                    return V_MEMO
            pos += arg_len + 1
        else:
            arg_len = 1 if kind == A_LEN1 else (4 if kind == A_LEN4 else 8)
            if n - pos < arg_len:
                return V_TRUNCATED
            length = 0
            for i in range(arg_len - 1, -1, -1):
                length = (length << 8) | p[pos + i]
            pos += arg_len
            if length > <uint64_t>(n - pos):
                return V_TRUNCATED
            pos += <Py_ssize_t>length
    where[0] = n
    return V_TRUNCATED


def screen_pickle(const uint8_t[::1] payload not None):
    """None when every opcode up to STOP is allowed, else ``(problem, offset)``.

    Refuses opcodes that import, call, build objects, use persistent ids or
    out-of-band buffers, memo indexes beyond the payload size (CPython's
    unpickler would allocate 16 bytes per index up front), and truncation.
    """
    cdef Py_ssize_t n = payload.shape[0]
    cdef Py_ssize_t where = 0
    cdef int verdict
    cdef const uint8_t* p = &payload[0] if n else <const uint8_t*>b""
    with nogil:
        verdict = screen(p, n, &where)
    if verdict == V_OK:
        return None
    return SCREEN_VERDICTS[verdict], where


# ---------------------------------------------------------------- pickle points

# Stack items of the restricted pickle decoder.
cdef enum:
    K_MARK = 0
    K_LIST = 1        # the top-level list
    K_TEXT = 2        # str or bytes: a span of the payload
    K_NUMBER = 3      # int or float, as a double
    K_PAIR = 4        # (timestamp, value) with both numbers known
    K_ENTRY = 5       # (name, (timestamp, value))
    K_OTHER = 6       # anything memoized that the decoder will not look at again

cdef enum:
    # Smaller frames are decoded holding the GIL: a few microseconds of work do
    # not pay for handing the GIL to the writer thread and waiting to get it back.
    RELEASE_GIL_BYTES = 65536

cdef enum:
    # Outcomes of decode_points.
    D_OK = 0
    D_FALLBACK = 1    # not the plain shape: the general (screened) path decides
    D_NO_MEMORY = 2


cdef struct Item:
    int kind
    Py_ssize_t start  # K_TEXT / K_ENTRY: where the text (name) starts
    Py_ssize_t length
    double first      # K_NUMBER / K_PAIR / K_ENTRY: the number, or the timestamp
    double second     # K_PAIR / K_ENTRY: the value


cdef struct Decoder:
    const uint8_t* p
    Py_ssize_t n
    Item* stack
    Py_ssize_t depth
    Py_ssize_t stack_size
    Item* memo
    Py_ssize_t memo_count
    Py_ssize_t memo_size
    Item* entries     # decoded K_ENTRY items, in order
    Py_ssize_t entry_count
    Py_ssize_t entry_size
    char* scratch
    locale_t c_locale


cdef int grow_items(Item** items, Py_ssize_t* size, Py_ssize_t needed) noexcept nogil:
    cdef Py_ssize_t grown = size[0] * 2 if size[0] else 64
    cdef Item* moved
    while grown < needed:
        grown *= 2
    moved = <Item*>realloc(items[0], grown * sizeof(Item))
    if moved == NULL:
        return -1
    items[0] = moved
    size[0] = grown
    return 0


cdef inline int push(Decoder* d, int kind, Py_ssize_t start, Py_ssize_t length,
                     double first) noexcept nogil:
    if d.depth == d.stack_size and grow_items(&d.stack, &d.stack_size, d.depth + 1) < 0:
        return D_NO_MEMORY
    d.stack[d.depth].kind = kind
    d.stack[d.depth].start = start
    d.stack[d.depth].length = length
    d.stack[d.depth].first = first
    d.depth += 1
    return D_OK


cdef inline uint64_t little_endian(const uint8_t* p, int width) noexcept nogil:
    cdef uint64_t number = 0
    cdef int i
    for i in range(width - 1, -1, -1):
        number = (number << 8) | p[i]
    return number


cdef inline bint as_number(Decoder* d, Item* item, double* out) noexcept nogil:
    """float(item) for a number, or for an ASCII text float() reads the way float(bytes) does."""
    if item.kind == K_NUMBER:
        out[0] = item.first
        return True
    if item.kind != K_TEXT or item.length == 0 or item.length > 64:
        return False
    if is_space(d.p[item.start]) or is_space(d.p[item.start + item.length - 1]):
        return False            # str and bytes strip different whitespace: let float() decide
    return parse_number(d.p + item.start, item.length, d.scratch, d.c_locale, out)


cdef int make_tuple(Decoder* d, Py_ssize_t size) noexcept nogil:
    """TUPLE2 (or MARK ... TUPLE of two): a (timestamp, value) pair or a (name, pair) entry."""
    cdef Item* first
    cdef Item* second
    cdef double timestamp, value
    if size != 2 or d.depth < 2:
        return D_FALLBACK
    first = &d.stack[d.depth - 2]
    second = &d.stack[d.depth - 1]
    if second.kind == K_PAIR:
        if first.kind != K_TEXT:
            return D_FALLBACK
        first.kind = K_ENTRY
        first.first = second.first
        first.second = second.second
    else:
        if not as_number(d, first, &timestamp) or not as_number(d, second, &value):
            return D_FALLBACK
        first.kind = K_PAIR
        first.first = timestamp
        first.second = value
    d.depth -= 1
    return D_OK


cdef int append_entries(Decoder* d, Py_ssize_t first) noexcept nogil:
    """Move stack items ``first..depth-1`` (all entries) into the top-level list below them."""
    cdef Py_ssize_t i, count = d.depth - first
    if first < 1 or d.stack[first - 1].kind != K_LIST:
        return D_FALLBACK
    for i in range(first, d.depth):
        if d.stack[i].kind != K_ENTRY:
            return D_FALLBACK
    if d.entry_count + count > d.entry_size and grow_items(
            &d.entries, &d.entry_size, d.entry_count + count) < 0:
        return D_NO_MEMORY
    memcpy(d.entries + d.entry_count, d.stack + first, count * sizeof(Item))
    d.entry_count += count
    d.depth = first
    return D_OK


cdef int memo_put(Decoder* d, uint64_t index) noexcept nogil:
    """Remember the top item; only the pickler's own numbering (0, 1, 2, ...) is followed."""
    if d.depth == 0 or index > <uint64_t>d.memo_count:
        return D_FALLBACK
    if d.memo_count == d.memo_size and grow_items(&d.memo, &d.memo_size, d.memo_count + 1) < 0:
        return D_NO_MEMORY
    d.memo[index] = d.stack[d.depth - 1]
    if d.memo[index].kind != K_TEXT and d.memo[index].kind != K_PAIR \
            and d.memo[index].kind != K_ENTRY:
        d.memo[index].kind = K_OTHER
    if index == <uint64_t>d.memo_count:
        d.memo_count += 1
    return D_OK


cdef int memo_get(Decoder* d, uint64_t index) noexcept nogil:
    """A repeated text, pair or entry (immutable things the pickler memoized) comes back."""
    cdef int status
    if index >= <uint64_t>d.memo_count or d.memo[index].kind == K_OTHER:
        return D_FALLBACK
    status = push(d, K_MARK, 0, 0, 0.0)
    if status == D_OK:
        d.stack[d.depth - 1] = d.memo[index]
    return status


cdef int decode_points(Decoder* d) noexcept nogil:
    """Walk a pickle of ``[(name, (timestamp, value)), ...]`` made of binary opcodes only.

    Builds nothing but spans and numbers; anything else (another shape, text
    opcodes, globals, booleans, None, a memo fetch of anything but a name) is
    D_FALLBACK, and the screened general unpickler takes the frame instead.
    """
    cdef Py_ssize_t pos = 0, i, mark
    cdef uint64_t length
    cdef int64_t signed_number
    cdef uint8_t op
    cdef int status
    cdef int width
    cdef double number
    cdef uint64_t bits
    while pos < d.n:
        op = d.p[pos]
        pos += 1
        status = D_OK
        if op == 0x80:                                  # PROTO
            pos += 1
        elif op == 0x95:                                # FRAME
            pos += 8
        elif op == 0x5d:                                # EMPTY_LIST
            status = push(d, K_LIST, 0, 0, 0.0)
        elif op == 0x28:                                # MARK
            status = push(d, K_MARK, 0, 0, 0.0)
        elif op == 0x65 or op == 0x74:                  # APPENDS, TUPLE
            mark = d.depth - 1
            while mark >= 0 and d.stack[mark].kind != K_MARK:
                mark -= 1
            if mark < 0:
                return D_FALLBACK
            for i in range(mark, d.depth - 1):          # drop the mark
                d.stack[i] = d.stack[i + 1]
            d.depth -= 1
            if op == 0x65:
                status = append_entries(d, mark)
            else:
                status = make_tuple(d, d.depth - mark)
        elif op == 0x61:                                # APPEND
            status = append_entries(d, d.depth - 1)
        elif op == 0x86:                                # TUPLE2
            status = make_tuple(d, 2)
        elif op == 0x71 or op == 0x72:                  # BINPUT, LONG_BINPUT
            width = 1 if op == 0x71 else 4
            if d.n - pos < width:
                return D_FALLBACK
            status = memo_put(d, little_endian(d.p + pos, width))
            pos += width
        elif op == 0x94:                                # MEMOIZE
            status = memo_put(d, d.memo_count)
        elif op == 0x68 or op == 0x6a:                  # BINGET, LONG_BINGET
            width = 1 if op == 0x68 else 4
            if d.n - pos < width:
                return D_FALLBACK
            status = memo_get(d, little_endian(d.p + pos, width))
            pos += width
        elif op == 0x58 or op == 0x8c or op == 0x8d or op == 0x55 or op == 0x54 \
                or op == 0x43 or op == 0x42 or op == 0x8e:
            # BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, SHORT_BINSTRING, BINSTRING,
            # SHORT_BINBYTES, BINBYTES, BINBYTES8: a length, then the text
            width = 1 if (op == 0x8c or op == 0x55 or op == 0x43) else (
                8 if (op == 0x8d or op == 0x8e) else 4)
            if d.n - pos < width:
                return D_FALLBACK
            length = little_endian(d.p + pos, width)
            pos += width
            if length > <uint64_t>(d.n - pos):
                return D_FALLBACK
            status = push(d, K_TEXT, pos, <Py_ssize_t>length, 0.0)
            pos += <Py_ssize_t>length
        elif op == 0x47:                                # BINFLOAT, big-endian
            if d.n - pos < 8:
                return D_FALLBACK
            bits = 0
            for i in range(8):
                bits = (bits << 8) | d.p[pos + i]
            memcpy(&number, &bits, 8)
            pos += 8
            status = push(d, K_NUMBER, 0, 0, number)
        elif op == 0x4a or op == 0x4b or op == 0x4d:    # BININT, BININT1, BININT2
            width = 4 if op == 0x4a else (1 if op == 0x4b else 2)
            if d.n - pos < width:
                return D_FALLBACK
            if op == 0x4a:
                signed_number = <int32_t>little_endian(d.p + pos, 4)
            else:
                signed_number = <int64_t>little_endian(d.p + pos, width)
            pos += width
            status = push(d, K_NUMBER, 0, 0, <double>signed_number)
        elif op == 0x8a:                                # LONG1: up to 8 bytes, two's complement
            if d.n - pos < 1:
                return D_FALLBACK
            width = d.p[pos]
            pos += 1
            if width > 8 or d.n - pos < width:
                return D_FALLBACK
            bits = little_endian(d.p + pos, width) if width else 0
            if 0 < width < 8 and d.p[pos + width - 1] & 0x80:
                bits |= ~((<uint64_t>1 << (8 * width)) - 1)
            pos += width
            status = push(d, K_NUMBER, 0, 0, <double><int64_t>bits)
        elif op == 0x2e:                                # STOP
            if d.depth == 1 and d.stack[0].kind == K_LIST:
                return D_OK
            return D_FALLBACK
        else:
            return D_FALLBACK
        if status != D_OK:
            return status
    return D_FALLBACK


def parse_pickle_points(const uint8_t[::1] payload not None, object index, double now,
                        Py_ssize_t max_points, object bad_name_error):
    """The points of a plain ``[(name, (timestamp, value)), ...]`` pickle, or None.

    None means "not plain and valid through and through" (another shape, an
    opcode this decoder does not follow, a refused number, NaN or infinity, a
    timestamp out of range, more than ``max_points`` entries, a bad name): the
    caller then runs the general screened path (``carbon.parse.parse_pickle_py``,
    this function's twin), which also produces the rejects. Returns
    ``(ids, timestamps, values)`` otherwise, exactly what that path returns.
    """
    cdef SpellingTable table = index.spellings
    cdef Decoder d
    cdef int status
    cdef Py_ssize_t k, count, missing = 0
    cdef Item* entry
    cdef double timestamp
    cdef cnp.ndarray ids_array
    cdef cnp.ndarray ts_array
    cdef cnp.ndarray value_array
    cdef int64_t* ids
    cdef uint64_t* hashes
    cdef double* timestamps
    cdef double* values
    cdef int64_t metric_id
    memset(&d, 0, sizeof(Decoder))
    d.n = payload.shape[0]
    d.p = &payload[0] if d.n else <const uint8_t*>b""
    d.scratch = <char*>malloc(72)
    d.c_locale = newlocale(LC_ALL_MASK, b"C", <locale_t>NULL)
    try:
        if d.scratch == NULL or d.c_locale == NULL:
            raise MemoryError("cannot allocate pickle decoder buffers")
        if d.n >= RELEASE_GIL_BYTES:
            with nogil:
                status = decode_points(&d)
        else:
            status = decode_points(&d)
        if status == D_NO_MEMORY:
            raise MemoryError("cannot decode pickle: out of memory")
        count = d.entry_count
        if status != D_OK or count > max_points:
            return None
        ids_array = np.empty(count, dtype=np.int64)
        ts_array = np.empty(count, dtype=np.float64)
        value_array = np.empty(count, dtype=np.float64)
        ids = <int64_t*>cnp.PyArray_DATA(ids_array)
        timestamps = <double*>cnp.PyArray_DATA(ts_array)
        values = <double*>cnp.PyArray_DATA(value_array)
        # Two passes: hash every name and prefetch its slot, then look them up. A frame's
        # lookups are independent memory reads; issued together their cache misses overlap.
        hashes = <uint64_t*>ids  # the ids array holds each name's hash until its id replaces it
        for k in range(count):
            entry = &d.entries[k]
            hashes[k] = hash_bytes(d.p + entry.start, entry.length, table.seed)
            prefetch(&table.slots[hashes[k] & <uint64_t>table.mask])
        for k in range(count):
            entry = &d.entries[k]
            timestamp = entry.first
            if -2.0 < timestamp <= -1.0:
                timestamp = now
            if not (0.0 <= timestamp < MAX_TIMESTAMP) or isnan(entry.second) or isinf(entry.second):
                return None
            timestamps[k] = timestamp
            values[k] = entry.second
            metric_id = table.find(d.p + entry.start, entry.length, hashes[k])
            ids[k] = metric_id
            if metric_id < 0:
                missing += 1
        for k in range(count if missing else 0):
            if ids[k] >= 0:
                continue
            entry = &d.entries[k]
            try:
                ids[k] = index.id_for((<const char*>d.p)[entry.start:entry.start + entry.length])
            except bad_name_error:
                return None
        return ids_array, ts_array, value_array
    finally:
        free(d.stack)
        free(d.memo)
        free(d.entries)
        free(d.scratch)
        if d.c_locale != NULL:
            freelocale(d.c_locale)

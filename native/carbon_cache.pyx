# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The carbon cache's point storage in C memory: per-metric runs of (timestamp, value).

Twin: ``carbon.cache.SeriesTablePy`` (same methods, numpy and dicts). A batch of
parsed points is appended in one call without the GIL and without a Python
object per point. Each metric id owns two runs: *pending* (waiting for the
writer) and *flying* (handed to the writer, still visible to queries until
confirmed). Metrics with pending points form a doubly linked list in the order
they entered the cache, which is the order carbon's dict gives its drain
strategies; a popped metric leaves the list and re-enters at the end.

Only the reactor thread calls these methods.
"""
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memset

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef enum:
    FIRST_ROWS = 16        # rows a run starts with: most metrics get a point per interval
    # Smaller batches are appended holding the GIL: tens of microseconds of work do not
    # pay for handing the GIL to the writer thread and waiting to get it back.
    RELEASE_GIL_POINTS = 16384


cdef struct Run:
    double* rows           # 2 * capacity doubles: timestamp, value, timestamp, value, ...
    Py_ssize_t n
    Py_ssize_t capacity
    bint increasing        # every timestamp later than the one before (no repeats, no sorting)


cdef struct Series:
    Run pending
    Run flying
    bint listed            # in the pending order list
    bint in_flight
    bint marked            # chosen by the pop_many call in progress
    int64_t prev
    int64_t next


cdef inline int run_reserve(Run* run, Py_ssize_t needed) noexcept nogil:
    """Room for ``needed`` rows; -1 when memory runs out (the run is left as it was)."""
    cdef Py_ssize_t capacity
    cdef double* rows
    if needed <= run.capacity:
        return 0
    capacity = run.capacity * 2 if run.capacity else FIRST_ROWS
    while capacity < needed:
        capacity *= 2
    rows = <double*>realloc(run.rows, capacity * 2 * sizeof(double))
    if rows == NULL:
        return -1
    run.rows = rows
    run.capacity = capacity
    return 0


cdef inline int run_append(Run* run, double timestamp, double value) noexcept nogil:
    if run.n == run.capacity and run_reserve(run, run.n + 1) < 0:
        return -1
    if run.n == 0:
        run.increasing = True
    elif timestamp <= run.rows[2 * run.n - 2]:
        run.increasing = False
    run.rows[2 * run.n] = timestamp
    run.rows[2 * run.n + 1] = value
    run.n += 1
    return 0


cdef inline void run_free(Run* run) noexcept nogil:
    free(run.rows)
    run.rows = NULL
    run.n = 0
    run.capacity = 0
    run.increasing = True


cdef int compare_doubles(const void* a, const void* b) noexcept nogil:
    cdef double x = (<const double*>a)[0]
    cdef double y = (<const double*>b)[0]
    return (x > y) - (x < y)


cdef Py_ssize_t distinct_timestamps(Run* run, double* scratch) noexcept nogil:
    """Points with distinct timestamps (what carbon's per-metric dict holds)."""
    cdef Py_ssize_t i, distinct
    if run.increasing or run.n < 2:
        return run.n
    for i in range(run.n):
        scratch[i] = run.rows[2 * i]
    qsort(scratch, run.n, sizeof(double), compare_doubles)
    distinct = 1
    for i in range(1, run.n):
        if scratch[i] != scratch[i - 1]:
            distinct += 1
    return distinct


cdef double earliest_timestamp(Run* run) noexcept nogil:
    cdef double low = run.rows[0]
    cdef Py_ssize_t i
    if not run.increasing:
        for i in range(1, run.n):
            if run.rows[2 * i] < low:
                low = run.rows[2 * i]
    return low


cdef class SeriesTable:
    """Pending and flying points of every metric id, in C memory."""
    cdef Series* series
    cdef Py_ssize_t capacity
    cdef int64_t head
    cdef int64_t tail
    cdef readonly Py_ssize_t pending_metrics
    cdef readonly Py_ssize_t flying_metrics
    cdef readonly Py_ssize_t pending_points
    cdef readonly Py_ssize_t flying_points

    def __cinit__(self):
        self.series = NULL
        self.capacity = 0
        self.head = -1
        self.tail = -1

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.capacity):
            free(self.series[i].pending.rows)
            free(self.series[i].flying.rows)
        free(self.series)

    cdef int _reserve_ids(self, int64_t highest) except -1:
        cdef Py_ssize_t capacity = self.capacity if self.capacity else 1024
        cdef Series* grown
        if highest < self.capacity:
            return 0
        while capacity <= highest:
            capacity *= 2
        grown = <Series*>realloc(self.series, capacity * sizeof(Series))
        if grown == NULL:
            raise MemoryError("cannot grow the cache's metric table")
        memset(grown + self.capacity, 0, (capacity - self.capacity) * sizeof(Series))
        self.series = grown
        self.capacity = capacity
        return 0

    cdef inline void _link(self, int64_t metric_id) noexcept nogil:
        cdef Series* s = &self.series[metric_id]
        s.listed = True
        s.prev = self.tail
        s.next = -1
        if self.tail >= 0:
            self.series[self.tail].next = metric_id
        else:
            self.head = metric_id
        self.tail = metric_id
        self.pending_metrics += 1

    cdef inline void _unlink(self, int64_t metric_id) noexcept nogil:
        cdef Series* s = &self.series[metric_id]
        if s.prev >= 0:
            self.series[s.prev].next = s.next
        else:
            self.head = s.next
        if s.next >= 0:
            self.series[s.next].prev = s.prev
        else:
            self.tail = s.prev
        s.listed = False
        self.pending_metrics -= 1

    cdef inline Series* _get(self, int64_t metric_id) noexcept nogil:
        if metric_id < 0 or metric_id >= self.capacity:
            return NULL
        return &self.series[metric_id]

    def append_many(self, const int64_t[::1] ids not None, const double[::1] timestamps not None,
                    const double[::1] values not None) -> None:
        """Append points in arrival order (ids must not be negative)."""
        cdef Py_ssize_t count = ids.shape[0], i, stored = 0
        cdef int64_t highest = -1, lowest = 0
        if timestamps.shape[0] != count or values.shape[0] != count:
            raise ValueError(f"cannot cache ids={count}: {timestamps.shape[0]} timestamps, "
                             f"{values.shape[0]} values")
        if count == 0:
            return
        for i in range(count):
            if ids[i] > highest:
                highest = ids[i]
            if ids[i] < lowest:
                lowest = ids[i]
        if lowest < 0:
            raise ValueError(f"cannot cache metric id={lowest}: ids are not negative")
        self._reserve_ids(highest)
        if count >= RELEASE_GIL_POINTS:
            with nogil:
                stored = self._append_all(&ids[0], &timestamps[0], &values[0], count)
        else:
            stored = self._append_all(&ids[0], &timestamps[0], &values[0], count)
        self.pending_points += stored
        if stored < count:
            raise MemoryError(f"cannot cache points: out of memory after {stored} of {count}")

    cdef Py_ssize_t _append_all(self, const int64_t* ids, const double* timestamps,
                                const double* values, Py_ssize_t count) noexcept nogil:
        """Append ``count`` points (ids already reserved); returns how many fit in memory."""
        cdef Py_ssize_t i
        cdef Series* s
        for i in range(count):
            s = &self.series[ids[i]]
            if run_append(&s.pending, timestamps[i], values[i]) < 0:
                return i
            if not s.listed:
                self._link(ids[i])
        return count

    def append(self, int64_t metric_id, double timestamp, double value) -> None:
        cdef Series* s
        if metric_id < 0:
            raise ValueError(f"cannot cache metric id={metric_id}: ids are not negative")
        self._reserve_ids(metric_id)
        s = &self.series[metric_id]
        if run_append(&s.pending, timestamp, value) < 0:
            raise MemoryError("cannot cache a point: out of memory")
        if not s.listed:
            self._link(metric_id)
        self.pending_points += 1

    def is_pending(self, int64_t metric_id) -> bool:
        cdef Series* s = self._get(metric_id)
        return s != NULL and s.listed

    def is_flying(self, int64_t metric_id) -> bool:
        cdef Series* s = self._get(metric_id)
        return s != NULL and s.in_flight

    def pending_mask(self, const int64_t[::1] ids not None):
        """For each id, whether it has pending points."""
        return self._mask(ids, False)

    def ready_mask(self, const int64_t[::1] ids not None):
        """For each id, whether it has pending points and none in flight (pop_many takes it)."""
        return self._mask(ids, True)

    cdef _mask(self, const int64_t[::1] ids, bint ready):
        cdef Py_ssize_t i, n = ids.shape[0]
        cdef cnp.ndarray out = np.zeros(n, dtype=np.bool_)
        cdef cnp.npy_bool* flags = <cnp.npy_bool*>cnp.PyArray_DATA(out)
        cdef Series* s
        for i in range(n):
            s = self._get(ids[i])
            flags[i] = s != NULL and s.listed and not (ready and s.in_flight)
        return out

    def pending_ids(self):
        """Ids with pending points, in the order they entered the cache (int64 array)."""
        cdef cnp.ndarray out = np.empty(self.pending_metrics, dtype=np.int64)
        cdef int64_t* ids = <int64_t*>cnp.PyArray_DATA(out)
        cdef int64_t metric_id = self.head
        cdef Py_ssize_t k = 0
        with nogil:
            while metric_id >= 0:
                ids[k] = metric_id
                k += 1
                metric_id = self.series[metric_id].next
        return out

    def flying_ids(self) -> list:
        """Ids whose popped points are not confirmed yet, ascending."""
        cdef Py_ssize_t i
        return [i for i in range(self.capacity) if self.series[i].in_flight]

    def counts(self):
        """(ids, distinct pending timestamps) in cache order, as int64 arrays."""
        cdef cnp.ndarray ids_out = np.empty(self.pending_metrics, dtype=np.int64)
        cdef cnp.ndarray counts_out = np.empty(self.pending_metrics, dtype=np.int64)
        cdef int64_t* ids = <int64_t*>cnp.PyArray_DATA(ids_out)
        cdef int64_t* counts = <int64_t*>cnp.PyArray_DATA(counts_out)
        cdef int64_t metric_id = self.head
        cdef Py_ssize_t k = 0, longest = 0
        cdef double* scratch = NULL
        cdef Series* s
        while metric_id >= 0:
            s = &self.series[metric_id]
            if not s.pending.increasing and s.pending.n > longest:
                longest = s.pending.n
            metric_id = s.next
        if longest:
            scratch = <double*>malloc(longest * sizeof(double))
            if scratch == NULL:
                raise MemoryError("cannot count cached points")
        metric_id = self.head
        with nogil:
            while metric_id >= 0:
                s = &self.series[metric_id]
                ids[k] = metric_id
                counts[k] = distinct_timestamps(&s.pending, scratch)
                k += 1
                metric_id = s.next
        free(scratch)
        return ids_out, counts_out

    def earliest(self):
        """(ids, earliest pending timestamp) in cache order."""
        cdef cnp.ndarray ids_out = np.empty(self.pending_metrics, dtype=np.int64)
        cdef cnp.ndarray marks_out = np.empty(self.pending_metrics, dtype=np.float64)
        cdef int64_t* ids = <int64_t*>cnp.PyArray_DATA(ids_out)
        cdef double* marks = <double*>cnp.PyArray_DATA(marks_out)
        cdef int64_t metric_id = self.head
        cdef Py_ssize_t k = 0
        with nogil:
            while metric_id >= 0:
                ids[k] = metric_id
                marks[k] = earliest_timestamp(&self.series[metric_id].pending)
                k += 1
                metric_id = self.series[metric_id].next
        return ids_out, marks_out

    def pop_many(self, const int64_t[::1] ids not None):
        """Move the pending points of ``ids`` in flight; returns ``(offsets, timestamps, values)``.

        Metric ``ids[k]``'s points, in arrival order, are ``timestamps[offsets[k]:offsets[k+1]]``.
        Every id must have pending points and none in flight (checked before anything moves).
        """
        cdef Py_ssize_t n = ids.shape[0], k = 0, i, total = 0, at = 0
        cdef Series* s
        cdef cnp.ndarray offsets_out = np.empty(n + 1, dtype=np.int64)
        cdef int64_t* offsets = <int64_t*>cnp.PyArray_DATA(offsets_out)
        cdef cnp.ndarray ts_out
        cdef cnp.ndarray values_out
        cdef double* ts
        cdef double* vals
        cdef double* rows
        try:
            for k in range(n):
                s = self._get(ids[k])
                if s == NULL or not s.listed:
                    raise KeyError(ids[k])
                if s.in_flight:
                    raise RuntimeError(f"cannot pop metric id={ids[k]}: a batch is already in flight")
                if s.marked:
                    raise RuntimeError(f"cannot pop metric id={ids[k]} twice in one call")
                s.marked = True
                total += s.pending.n
        finally:
            for i in range(k + 1 if n else 0):
                s = self._get(ids[i])
                if s != NULL:
                    s.marked = False
        ts_out = np.empty(total, dtype=np.float64)
        values_out = np.empty(total, dtype=np.float64)
        ts = <double*>cnp.PyArray_DATA(ts_out)
        vals = <double*>cnp.PyArray_DATA(values_out)
        with nogil:
            for k in range(n):
                s = &self.series[ids[k]]
                offsets[k] = at
                rows = s.pending.rows
                for i in range(s.pending.n):
                    ts[at + i] = rows[2 * i]
                    vals[at + i] = rows[2 * i + 1]
                at += s.pending.n
                self._unlink(ids[k])
                s.flying = s.pending
                s.pending.rows = NULL
                s.pending.n = 0
                s.pending.capacity = 0
                s.pending.increasing = True
                s.in_flight = True
                self.flying_metrics += 1
                self.pending_points -= s.flying.n
                self.flying_points += s.flying.n
            offsets[n] = at
        return offsets_out, ts_out, values_out

    def confirm_many(self, const int64_t[::1] ids not None) -> int:
        """Forget the flying points of ``ids`` (ids with nothing in flight are skipped); returns
        how many points were forgotten."""
        cdef Py_ssize_t k, n = ids.shape[0], freed = 0
        cdef Series* s
        with nogil:
            for k in range(n):
                s = self._get(ids[k])
                if s == NULL or not s.in_flight:
                    continue
                freed += s.flying.n
                s.in_flight = False
                self.flying_metrics -= 1
                if s.pending.rows == NULL:   # recycle the memory for the next points
                    s.pending.rows = s.flying.rows
                    s.pending.capacity = s.flying.capacity
                    s.flying.rows = NULL
                    s.flying.capacity = 0
                run_free(&s.flying)
            self.flying_points -= freed
        return freed

    def restore(self, int64_t metric_id) -> int:
        """Put flying points back ahead of pending ones, the metric last in cache order; returns
        how many came back (0 when nothing was in flight)."""
        cdef Series* s = self._get(metric_id)
        cdef Run merged
        cdef Py_ssize_t i, back
        if s == NULL or not s.in_flight:
            return 0
        back = s.flying.n
        merged.rows = NULL
        merged.n = 0
        merged.capacity = 0
        merged.increasing = True
        if run_reserve(&merged, s.flying.n + s.pending.n) < 0:
            raise MemoryError("cannot restore points: out of memory")
        for i in range(s.flying.n):
            run_append(&merged, s.flying.rows[2 * i], s.flying.rows[2 * i + 1])
        for i in range(s.pending.n):
            run_append(&merged, s.pending.rows[2 * i], s.pending.rows[2 * i + 1])
        run_free(&s.flying)
        run_free(&s.pending)
        s.pending = merged
        s.in_flight = False
        self.flying_metrics -= 1
        self.flying_points -= back
        self.pending_points += back
        if s.listed:
            self._unlink(metric_id)
        self._link(metric_id)
        return back

    def rows(self, int64_t metric_id):
        """``(rows, increasing)``: flying then pending points as an (n, 2) float64 array, and
        whether their timestamps strictly increase (no duplicates to resolve)."""
        cdef Series* s = self._get(metric_id)
        cdef cnp.ndarray out
        cdef double* data
        cdef bint increasing
        if s == NULL:
            return np.empty((0, 2)), True
        out = np.empty((s.flying.n + s.pending.n, 2), dtype=np.float64)
        data = <double*>cnp.PyArray_DATA(out)
        if s.flying.n:
            memcpy(data, s.flying.rows, s.flying.n * 2 * sizeof(double))
        if s.pending.n:
            memcpy(data + 2 * s.flying.n, s.pending.rows, s.pending.n * 2 * sizeof(double))
        increasing = (s.flying.n == 0 or s.flying.increasing) and (
            s.pending.n == 0 or s.pending.increasing) and not (
            s.flying.n and s.pending.n
            and s.pending.rows[0] <= s.flying.rows[2 * s.flying.n - 2])
        return out, increasing

    def __len__(self):
        return self.pending_metrics

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled Whisper kernels: point packing, archive writes with wrap-around, propagation with
xFilesFactor, and fetch straight into float64 arrays, all with the GIL released. A kernel's
*target* is either a raw file descriptor (pread/pwrite) or a writable buffer holding the
whole file, normally a `Mapping` (a MAP_SHARED mmap made by map_file): then a read is a
bounds-checked memcpy and a write a bounds-checked store, so a warm update makes no
system call. Linux keeps mmap and read/write coherent (one page cache), so other processes
using whisper.py see the same bytes either way.

Twin: storage/whisper/kernels_py.py (same functions, arguments, results and errors) follows
whisper 1.1.10 one read and one write at a time. These kernels give the same bytes with
fewer system calls: a propagation level reads the higher archive's points once for all its
lower intervals, and writes its lower points as coalesced runs after replaying whisper's
write order in memory (later writes to a slot win; a write to slot 0 moves the archive's
base timestamp, exactly as whisper re-reads it before every write).

Each archive's base timestamp (slot 0's) is kept in a caller-owned array across calls, so a
warm file costs no base reads; a batch that overflows its ring forgets them all.

The one place that touches Python objects is the order in which a level's lower intervals
are visited: whisper iterates a Python set, so these kernels ask a real set (with the GIL,
only when there is more than one interval).
"""
from cpython.buffer cimport (
    PyBUF_SIMPLE,
    PyBUF_WRITABLE,
    PyBuffer_FillInfo,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from libc.errno cimport EINTR, EIO, errno
from libc.math cimport INFINITY, NAN, fabs
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from posix.mman cimport (
    MAP_FAILED,
    MAP_SHARED,
    POSIX_MADV_RANDOM,
    POSIX_MADV_WILLNEED,
    PROT_READ,
    PROT_WRITE,
    mmap,
    munmap,
    posix_madvise,
)
from posix.fcntl cimport O_CLOEXEC, O_CREAT, O_EXCL, O_RDWR
from posix.fcntl cimport open as open_path
from posix.stat cimport S_ISREG, fstat, mkdir, struct_stat
from posix.stat cimport stat as stat_path
from posix.unistd cimport close, pread, pwrite, unlink

import os

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef enum:
    POINT_SIZE = 12
    ZERO_BLOCK = 1 << 16
    PAGE_HINT = 4096      # the granularity will_need rounds to (any page size works)
    STATUS_OK = 0
    STATUS_SHORT = -1     # the file ended before a read finished
    STATUS_OS = -2        # pread/pwrite failed; errno saved
    STATUS_RANGE = -3     # a timestamp a uint32 cannot hold
    STATUS_MEMORY = -4
    STATUS_CAPACITY = -5  # output arrays too small

cdef extern from *:
    """
    #include <errno.h>
    #include <fcntl.h>
    #include <sys/types.h>
    #include <sys/uio.h>
    #include <unistd.h>
    #ifdef __linux__
    #include <sys/vfs.h>
    #endif

    /* fallocate(2) mode 0 (allocate zeroed blocks, extend the size); 0 or an errno value.
       Not glibc's posix_fallocate, whose fallback writes a byte per block. */
    static int carbyne_fallocate(int fd, long long offset, long long length) {
    #ifdef __linux__
        int result;
        do {
            result = fallocate(fd, 0, (off_t)offset, (off_t)length);
        } while (result != 0 && errno == EINTR);
        return result == 0 ? 0 : errno;
    #else
        (void)fd; (void)offset; (void)length;
        return EOPNOTSUPP;
    #endif
    }

    /* The f_type magic number of the filesystem holding fd; 0 where unknown, -1 on error. */
    static long long carbyne_filesystem_magic(int fd) {
    #ifdef __linux__
        struct statfs status;
        if (fstatfs(fd, &status) != 0) return -1;
        return (long long)status.f_type;
    #else
        (void)fd;
        return 0;
    #endif
    }

    /* One pwritev of up to `count` copies of the same block (short writes are the caller's). */
    static ssize_t carbyne_pwrite_repeated(int fd, const unsigned char* block, long long size,
                                           int count, long long offset) {
        struct iovec vectors[64];
        int i;
        if (count > 64) count = 64;
        for (i = 0; i < count; i++) {
            vectors[i].iov_base = (void*)block;
            vectors[i].iov_len = (size_t)size;
        }
        return pwritev(fd, vectors, count, (off_t)offset);
    }
    """
    int carbyne_fallocate(int fd, long long offset, long long length) nogil
    long long carbyne_filesystem_magic(int fd) nogil
    ssize_t carbyne_pwrite_repeated(int fd, const unsigned char* block, long long size,
                                    int count, long long offset) nogil
    int EOPNOTSUPP
    int ENOSYS
    int EEXIST

cdef int64_t UINT32_LIMIT = 1LL << 32
cdef unsigned char ZEROS[ZERO_BLOCK]  # static, zero-initialised: the non-sparse data area


cdef struct Status:
    int code
    int errno_value
    int64_t offset
    int64_t size
    int64_t value


cdef struct Archive:
    int64_t index
    int64_t offset
    int64_t step
    int64_t points


cdef struct Io:
    # where a kernel reads and writes: a descriptor (base == NULL) or `size` bytes of memory
    int fd
    unsigned char* base
    int64_t size


cdef struct Whisper:
    # one open file: its I/O target, archive table, aggregation and known base timestamps
    Io io
    const int64_t* table
    int64_t archives
    int aggregation
    double xff
    int64_t* bases  # per archive: slot 0's timestamp, 0 = not known yet (read it)


# ---------------------------------------------------------------- byte order and arithmetic

cdef inline uint32_t load_u32(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]


cdef inline double load_f64(const unsigned char* p) noexcept nogil:
    cdef uint64_t bits = 0
    cdef double value
    cdef int i
    for i in range(8):
        bits = (bits << 8) | p[4 + i]
    memcpy(&value, &bits, 8)
    return value


cdef inline void store_point(unsigned char* p, int64_t timestamp, double value) noexcept nogil:
    cdef uint64_t bits
    cdef int i
    memcpy(&bits, &value, 8)
    p[0] = <unsigned char>(timestamp >> 24)
    p[1] = <unsigned char>(timestamp >> 16)
    p[2] = <unsigned char>(timestamp >> 8)
    p[3] = <unsigned char>timestamp
    for i in range(8):
        p[11 - i] = <unsigned char>(bits >> (8 * i))


cdef inline int64_t floor_div(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a / b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline int64_t floor_mod(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t r = a % b
    if r != 0 and ((r < 0) != (b < 0)):
        r += b
    return r


cdef inline int64_t slot_of(int64_t interval, int64_t base, Archive* archive) noexcept nogil:
    """The ring slot whisper stores `interval` in, given the archive's base timestamp."""
    return floor_mod(floor_div(interval - base, archive.step), archive.points)


cdef inline int64_t ring_count(int64_t first, int64_t end, int64_t points) noexcept nogil:
    """Slots whisper reads from first to end; equal slots mean the whole ring."""
    if first < end:
        return end - first
    return points - first + end


# ---------------------------------------------------------------- I/O

cdef inline int outside(Io* io, int64_t size, int64_t offset, bint writing,
                        Status* status) noexcept nogil:
    """A memory target ends where the file ended when it was mapped: nothing past it is
    touched, and reading or writing there is reported like a read past the end of a file."""
    if offset < 0 or size < 0 or offset > io.size or size > io.size - offset:
        status.code = STATUS_SHORT
        status.offset = offset
        status.size = size
        status.value = writing
        return STATUS_SHORT
    return STATUS_OK


cdef inline void will_need(Io* io, int64_t size, int64_t offset) noexcept nogil:
    """Ask for a multi-page range of a mapping in one go: mappings are advised RANDOM (one
    page per fault, no 128 KiB read-around per point written), so a long cold read would
    otherwise fault its pages in one by one."""
    cdef int64_t start
    if size <= PAGE_HINT:
        return
    start = offset - offset % PAGE_HINT
    posix_madvise(io.base + start, <size_t>(offset + size - start), POSIX_MADV_WILLNEED)


cdef int read_exact(Io* io, unsigned char* buffer, int64_t size, int64_t offset,
                    Status* status) noexcept nogil:
    cdef int64_t done = 0
    cdef ssize_t got
    if io.base != NULL:
        if outside(io, size, offset, False, status) < 0:
            return STATUS_SHORT
        will_need(io, size, offset)
        memcpy(buffer, io.base + offset, size)
        return STATUS_OK
    while done < size:
        got = pread(io.fd, buffer + done, size - done, offset + done)
        if got < 0:
            if errno == EINTR:
                continue
            status.code = STATUS_OS
            status.errno_value = errno
            return STATUS_OS
        if got == 0:
            status.code = STATUS_SHORT
            status.offset = offset
            status.size = size
            return STATUS_SHORT
        done += got
    return STATUS_OK


cdef int write_all(Io* io, const unsigned char* buffer, int64_t size, int64_t offset,
                   Status* status) noexcept nogil:
    cdef int64_t done = 0
    cdef ssize_t put
    if io.base != NULL:
        if outside(io, size, offset, True, status) < 0:
            return STATUS_SHORT
        memcpy(io.base + offset, buffer, size)
        return STATUS_OK
    while done < size:
        put = pwrite(io.fd, buffer + done, size - done, offset + done)
        if put < 0 and errno == EINTR:
            continue
        if put <= 0:
            status.code = STATUS_OS
            status.errno_value = errno if put < 0 else EIO
            return STATUS_OS
        done += put
    return STATUS_OK


cdef int read_base(Io* io, Archive* archive, int64_t* base, Status* status) noexcept nogil:
    """The timestamp in an archive's first slot; 0 means never written."""
    cdef unsigned char point[POINT_SIZE]
    if read_exact(io, point, POINT_SIZE, archive.offset, status) < 0:
        return status.code
    base[0] = load_u32(point)
    return STATUS_OK


cdef int get_base(Whisper* file, Archive* archive, int64_t* base, Status* status) noexcept nogil:
    """read_base, answered from file.bases when known. A known base stays valid: whisper only
    ever overwrites slot 0 with a timestamp that maps to slot 0, which gives the same slots."""
    if file.bases[archive.index] != 0:
        base[0] = file.bases[archive.index]
        return STATUS_OK
    if read_base(&file.io, archive, base, status) < 0:
        return status.code
    file.bases[archive.index] = base[0]
    return STATUS_OK


cdef inline void load_archive(Whisper* file, int64_t index, Archive* archive) noexcept nogil:
    archive.index = index
    archive.offset = file.table[3 * index]
    archive.step = file.table[3 * index + 1]
    archive.points = file.table[3 * index + 2]


cdef int read_ring(Io* io, Archive* archive, int64_t first, int64_t count, unsigned char* buffer,
                   Status* status) noexcept nogil:
    """`count` (<= points) slots from `first` on, wrapping past the ring's end once."""
    cdef int64_t tail = archive.points - first
    if count <= tail:
        return read_exact(io, buffer, count * POINT_SIZE, archive.offset + first * POINT_SIZE, status)
    if read_exact(io, buffer, tail * POINT_SIZE, archive.offset + first * POINT_SIZE, status) < 0:
        return status.code
    return read_exact(io, buffer + tail * POINT_SIZE, (count - tail) * POINT_SIZE, archive.offset,
                      status)


cdef void stable_sort(const int64_t* keys, int64_t* order, int64_t* scratch, int64_t n) noexcept nogil:
    """Bottom-up merge sort of `order` by keys[order[i]], ascending, equal keys kept in order."""
    cdef int64_t width = 1
    cdef int64_t low, middle, high, i, j, k
    cdef int64_t* source = order
    cdef int64_t* target = scratch
    cdef int64_t* swap
    while width < n:
        low = 0
        while low < n:
            middle = min(low + width, n)
            high = min(low + 2 * width, n)
            i = low
            j = middle
            k = low
            while i < middle and j < high:
                if keys[source[j]] < keys[source[i]]:
                    target[k] = source[j]
                    j += 1
                else:
                    target[k] = source[i]
                    i += 1
                k += 1
            while i < middle:
                target[k] = source[i]
                i += 1
                k += 1
            while j < high:
                target[k] = source[j]
                j += 1
                k += 1
            low += 2 * width
        swap = source
        source = target
        target = swap
        width *= 2
    if source != order:
        memcpy(order, source, n * sizeof(int64_t))


# ---------------------------------------------------------------- aggregation

cdef double aggregate(int aggregation, const double* values, const uint8_t* known, int64_t count,
                      int64_t known_count) noexcept nogil:
    """whisper.aggregate over the known values (in order), as Python's sum/max/min compute it."""
    cdef double total = 0.0
    cdef double chosen = 0.0
    cdef bint have = False
    cdef int64_t i
    if aggregation == 6:  # avg_zero: missing and zero points count as 0
        for i in range(count):
            if known[i] and values[i] != 0.0:
                total += values[i]
        return total / <double>count
    for i in range(count):
        if not known[i]:
            continue
        if aggregation == 1 or aggregation == 2:
            total += values[i]
        elif not have:
            chosen = values[i]
        elif aggregation == 3:
            chosen = values[i]
        elif aggregation == 4:
            if values[i] > chosen:
                chosen = values[i]
        elif aggregation == 5:
            if values[i] < chosen:
                chosen = values[i]
        elif aggregation == 7:
            if fabs(values[i]) > fabs(chosen):
                chosen = values[i]
        elif aggregation == 8:
            if fabs(values[i]) < fabs(chosen):
                chosen = values[i]
        have = True
    if aggregation == 1:
        return total / <double>known_count
    if aggregation == 2:
        return total
    return chosen


# ---------------------------------------------------------------- fetch

cdef int64_t fetch_core(Io* io, Archive* archive, int64_t from_interval, int64_t until_interval,
                        double* values, uint8_t* known, int64_t capacity,
                        Status* status) noexcept nogil:
    cdef int64_t base, count, first, i, expected
    cdef unsigned char* buffer
    if read_base(io, archive, &base, status) < 0:
        return status.code
    if base == 0:
        count = floor_div(until_interval - from_interval, archive.step)
        if count < 0:
            count = 0
        if count > capacity:
            status.code = STATUS_CAPACITY
            return STATUS_CAPACITY
        for i in range(count):
            values[i] = NAN
            known[i] = 0
        return count
    first = slot_of(from_interval, base, archive)
    count = ring_count(first, slot_of(until_interval, base, archive), archive.points)
    if count > capacity:
        status.code = STATUS_CAPACITY
        return STATUS_CAPACITY
    buffer = <unsigned char*>malloc(count * POINT_SIZE)
    if buffer == NULL:
        status.code = STATUS_MEMORY
        return STATUS_MEMORY
    try:
        if read_ring(io, archive, first, count, buffer, status) < 0:
            return status.code
        expected = from_interval
        for i in range(count):
            if <int64_t>load_u32(buffer + i * POINT_SIZE) == expected:
                values[i] = load_f64(buffer + i * POINT_SIZE)
                known[i] = 1
            else:
                values[i] = NAN
                known[i] = 0
            expected += archive.step
        return count
    finally:
        free(buffer)


# ---------------------------------------------------------------- propagation

cdef int64_t python_set_order(int64_t* intervals, int64_t count) noexcept with gil:
    """Rewrite intervals[:count] as list(set(intervals[:count])); returns the new count.

    whisper visits a level's lower intervals in a Python set's iteration order, and that order
    decides which interval becomes a fresh archive's base timestamp and which write wins a
    shared slot. Asking a real set of Python ints keeps that order whatever the interpreter.
    """
    cdef int64_t i = 0
    try:
        for item in set([intervals[j] for j in range(count)]):
            intervals[i] = item
            i += 1
        return i
    except BaseException:
        return -1


cdef int write_lower_points(Io* io, Archive* lower, int64_t* slots, int64_t* timestamps,
                            double* values, int64_t n, Status* status) noexcept nogil:
    """Write (slot, timestamp, value) triples as whisper would one by one: sorted by slot,
    the last write to a slot winning, contiguous slots going out in one pwrite."""
    cdef int64_t* order
    cdef unsigned char* packed
    cdef int64_t i, k, kept, run_start
    if n == 1:
        return write_one(io, lower, slots[0], timestamps[0], values[0], status)
    order = <int64_t*>malloc(2 * n * sizeof(int64_t))
    packed = <unsigned char*>malloc(n * POINT_SIZE)
    try:
        if order == NULL or packed == NULL:
            status.code = STATUS_MEMORY
            return STATUS_MEMORY
        for i in range(n):
            order[i] = i
        stable_sort(slots, order, order + n, n)
        kept = 0
        for k in range(n):
            if k + 1 < n and slots[order[k + 1]] == slots[order[k]]:
                continue  # a later write to this slot replaces this one
            order[kept] = order[k]
            store_point(packed + kept * POINT_SIZE, timestamps[order[k]], values[order[k]])
            kept += 1
        run_start = 0
        for k in range(1, kept + 1):
            if k == kept or slots[order[k]] != slots[order[k - 1]] + 1:
                if write_all(io, packed + run_start * POINT_SIZE, (k - run_start) * POINT_SIZE,
                             lower.offset + slots[order[run_start]] * POINT_SIZE, status) < 0:
                    return status.code
                run_start = k
        return STATUS_OK
    finally:
        free(order)
        free(packed)


cdef int write_one(Io* io, Archive* archive, int64_t slot, int64_t timestamp, double value,
                   Status* status) noexcept nogil:
    cdef unsigned char point[POINT_SIZE]
    store_point(point, timestamp, value)
    return write_all(io, point, POINT_SIZE, archive.offset + slot * POINT_SIZE, status)


cdef int propagate_level(Whisper* file, Archive* higher, Archive* lower,
                         const int64_t* aligned, int64_t n, bint* propagated,
                         Status* status) noexcept nogil:
    """One level of whisper's __archive_update_many propagation: every distinct lower interval
    of `aligned` gets the aggregate of its higher points when enough of them are known."""
    cdef int64_t per_interval = lower.step / higher.step
    cdef int64_t count = ring_count(0, per_interval % higher.points, higher.points)
    cdef int64_t* intervals = <int64_t*>malloc(n * sizeof(int64_t))
    cdef int64_t* slots = <int64_t*>malloc(n * sizeof(int64_t))
    cdef int64_t* stamps = <int64_t*>malloc(n * sizeof(int64_t))
    cdef double* results = <double*>malloc(n * sizeof(double))
    cdef double* values = <double*>malloc(count * sizeof(double))
    cdef uint8_t* known = <uint8_t*>malloc(count * sizeof(uint8_t))
    cdef unsigned char* buffer = NULL
    cdef int64_t unique = 0, written = 0, i, j, k, interval, lowest, highest, first_slot
    cdef int64_t higher_base, lower_base = 0, buffer_first, span, position, known_count
    cdef bint ascending = True, whole_ring = False
    cdef const unsigned char* point
    try:
        if intervals == NULL or slots == NULL or stamps == NULL or results == NULL \
                or values == NULL or known == NULL:
            status.code = STATUS_MEMORY
            return STATUS_MEMORY
        for i in range(1, n):
            if aligned[i] < aligned[i - 1]:
                ascending = False
                break
        for i in range(n):
            interval = aligned[i] - floor_mod(aligned[i], lower.step)
            if not ascending or unique == 0 or interval != intervals[unique - 1]:
                intervals[unique] = interval
                unique += 1
        if unique > 1:
            unique = python_set_order(intervals, unique)
            if unique < 0:
                status.code = STATUS_MEMORY
                return STATUS_MEMORY

        # Read every higher point this level needs at once: a span of the ring or all of it.
        if get_base(file, higher, &higher_base, status) < 0:
            return status.code
        lowest = intervals[0]
        highest = intervals[0]
        for k in range(1, unique):
            lowest = min(lowest, intervals[k])
            highest = max(highest, intervals[k])
        if higher_base == 0:
            buffer_first = 0
            span = count
        else:
            buffer_first = slot_of(lowest, higher_base, higher)
            span = (floor_div(highest - higher_base, higher.step)
                    - floor_div(lowest - higher_base, higher.step) + count)
            if span >= higher.points:
                whole_ring = True
                buffer_first = 0
                span = higher.points
        buffer = <unsigned char*>malloc(span * POINT_SIZE)
        if buffer == NULL:
            status.code = STATUS_MEMORY
            return STATUS_MEMORY
        if read_ring(&file.io, higher, buffer_first, span, buffer, status) < 0:
            return status.code

        for k in range(unique):
            interval = intervals[k]
            if higher_base == 0:
                first_slot = 0
            elif whole_ring:
                first_slot = slot_of(interval, higher_base, higher)
            else:
                first_slot = (floor_div(interval - higher_base, higher.step)
                              - floor_div(lowest - higher_base, higher.step))
            known_count = 0
            for j in range(count):
                position = (first_slot + j) % higher.points if whole_ring else first_slot + j
                point = buffer + position * POINT_SIZE
                if <int64_t>load_u32(point) == interval + j * higher.step:
                    values[j] = load_f64(point)
                    known[j] = 1
                    known_count += 1
                else:
                    known[j] = 0
            if known_count == 0 or <double>known_count / <double>count < file.xff:
                continue
            if written == 0 and get_base(file, lower, &lower_base, status) < 0:
                return status.code  # (read on the first write, as whisper first reads it)
            if lower_base == 0:
                slots[written] = 0
            else:
                slots[written] = slot_of(interval, lower_base, lower)
            if slots[written] == 0:
                lower_base = interval  # whisper re-reads the base before each write
            stamps[written] = interval
            results[written] = aggregate(file.aggregation, values, known, count, known_count)
            written += 1
        propagated[0] = written > 0
        if written == 0:
            return STATUS_OK
        file.bases[lower.index] = lower_base
        return write_lower_points(&file.io, lower, slots, stamps, results, written, status)
    finally:
        free(intervals)
        free(slots)
        free(stamps)
        free(results)
        free(values)
        free(known)
        free(buffer)


# ---------------------------------------------------------------- writes

cdef int archive_update_core(Whisper* file, int64_t index, const int64_t* timestamps,
                             const double* values, int64_t n, Status* status) noexcept nogil:
    """whisper's __archive_update_many: chronological points into archive `index`, then
    propagation to every lower-precision archive until a level propagates nothing."""
    cdef Archive archive
    cdef Archive higher
    cdef Archive lower
    cdef int64_t* aligned = <int64_t*>malloc(n * sizeof(int64_t))
    cdef int64_t* run_first = <int64_t*>malloc((n + 1) * sizeof(int64_t))
    cdef int64_t* run_start = <int64_t*>malloc(n * sizeof(int64_t))
    cdef unsigned char* packed = <unsigned char*>malloc(n * POINT_SIZE)
    cdef int64_t i, r, interval, previous = 0, kept = 0, runs = 0, run_length = 0
    cdef int64_t base, slot, length, fitting, level, first_in_slot_zero
    cdef bint propagated, overflowed = False
    load_archive(file, index, &archive)
    try:
        if aligned == NULL or run_first == NULL or run_start == NULL or packed == NULL:
            status.code = STATUS_MEMORY
            return STATUS_MEMORY
        for i in range(n):
            aligned[i] = timestamps[i] - floor_mod(timestamps[i], archive.step)
        for i in range(n):
            if i + 1 < n and aligned[i + 1] == aligned[i]:
                continue  # of points sharing an interval, the last one is kept
            interval = aligned[i]
            if interval < 0 or interval >= UINT32_LIMIT:
                status.code = STATUS_RANGE
                status.value = interval
                return STATUS_RANGE
            # whisper tests `not previousInterval`: after interval 0 a run never breaks
            if previous != 0 and interval != previous + archive.step:
                run_start[runs] = previous - archive.step * (run_length - 1)
                run_first[runs] = kept - run_length
                runs += 1
                run_length = 0
            store_point(packed + kept * POINT_SIZE, interval, values[i])
            kept += 1
            run_length += 1
            previous = interval
        run_start[runs] = previous - archive.step * (run_length - 1)
        run_first[runs] = kept - run_length
        runs += 1
        run_first[runs] = kept

        # whisper reads the base once for the whole batch
        if get_base(file, &archive, &base, status) < 0:
            return status.code
        if base == 0:
            base = run_start[0]
        first_in_slot_zero = -1  # packed index of the last point written to slot 0
        for r in range(runs):
            slot = slot_of(run_start[r], base, &archive)
            length = run_first[r + 1] - run_first[r]
            fitting = min(length, archive.points - slot)
            if write_all(&file.io, packed + run_first[r] * POINT_SIZE, fitting * POINT_SIZE,
                         archive.offset + slot * POINT_SIZE, status) < 0:
                return status.code
            if slot == 0:
                first_in_slot_zero = run_first[r]
            if fitting < length:
                # the rest goes to the ring's start (and past its end if longer, as in whisper)
                if write_all(&file.io, packed + (run_first[r] + fitting) * POINT_SIZE,
                             (length - fitting) * POINT_SIZE, archive.offset, status) < 0:
                    return status.code
                first_in_slot_zero = run_first[r] + fitting
                overflowed = overflowed or length - fitting > archive.points
        if overflowed:  # other archives' slots were overwritten: forget every known base
            for level in range(file.archives):
                file.bases[level] = 0
        elif first_in_slot_zero >= 0:
            file.bases[index] = load_u32(packed + first_in_slot_zero * POINT_SIZE)

        higher = archive
        for level in range(file.archives):
            if file.table[3 * level + 1] <= archive.step:
                continue
            load_archive(file, level, &lower)
            propagated = False
            if propagate_level(file, &higher, &lower, aligned, n, &propagated, status) < 0:
                return status.code
            if not propagated:
                break
            higher = lower
        return STATUS_OK
    finally:
        free(aligned)
        free(run_first)
        free(run_start)
        free(packed)


cdef int commit(Whisper* file, int64_t index, const int64_t* timestamps, const double* values,
                int64_t n, Status* status) noexcept nogil:
    """Hand one archive's batch (collected newest first) over in chronological order."""
    cdef int64_t* chronological = <int64_t*>malloc(n * sizeof(int64_t))
    cdef double* chronological_values = <double*>malloc(n * sizeof(double))
    cdef int64_t i
    try:
        if chronological == NULL or chronological_values == NULL:
            status.code = STATUS_MEMORY
            return STATUS_MEMORY
        for i in range(n):
            chronological[i] = timestamps[n - 1 - i]
            chronological_values[i] = values[n - 1 - i]
        return archive_update_core(file, index, chronological, chronological_values, n, status)
    finally:
        free(chronological)
        free(chronological_values)


cdef int64_t update_many_core(Whisper* file, const int64_t* timestamps, const double* values,
                              int64_t n, int64_t now, Status* status) noexcept nogil:
    cdef int64_t archive = 0, kept = 0, batch_start = 0, batch_length = 0, i
    cdef const int64_t* table = file.table
    for i in range(n):
        while archive < file.archives and \
                table[3 * archive + 1] * table[3 * archive + 2] < now - timestamps[i]:
            if batch_length > 0:
                if commit(file, archive, timestamps + batch_start, values + batch_start,
                          batch_length, status) < 0:
                    return status.code
                batch_length = 0
            archive += 1
        if archive == file.archives:
            break
        if batch_length == 0:
            batch_start = i
        batch_length += 1
        kept += 1
    if archive < file.archives and batch_length > 0:
        if commit(file, archive, timestamps + batch_start, values + batch_start, batch_length,
                  status) < 0:
            return status.code
    return kept


# ---------------------------------------------------------------- Python entry points

cdef object raise_for(Status* status):
    if status.code == STATUS_SHORT:
        if status.value:
            raise EOFError(f"cannot write bytes={status.size} at offset={status.offset}: "
                           "the mapped file ends first")
        raise EOFError(f"cannot read bytes={status.size} at offset={status.offset}: "
                       "the file ends first")
    if status.code == STATUS_OS:
        raise OSError(status.errno_value, os.strerror(status.errno_value))
    if status.code == STATUS_RANGE:
        raise OverflowError(f"cannot write timestamp={status.value}: not a 32-bit unsigned number")
    if status.code == STATUS_CAPACITY:
        raise ValueError("cannot fetch into the given arrays: they are too short")
    raise MemoryError()


cdef class Mapping:
    """A MAP_SHARED, read-write mmap of a whole file, exported as a writable buffer.

    It holds no file descriptor (unlike Python's mmap, which keeps a dup), so a cache of
    mappings is not bounded by RLIMIT_NOFILE. close() unmaps once no buffer of it is in use
    (kernels hold one only for the duration of a call), so a kernel never runs on memory
    that was unmapped under it.
    """

    cdef unsigned char* address
    cdef readonly Py_ssize_t size
    cdef Py_ssize_t exports
    cdef bint closing

    def __cinit__(self, int fd, Py_ssize_t size):
        cdef void* address
        cdef int error = 0
        if size <= 0:
            raise ValueError(f"cannot map size={size}: must be positive")
        with nogil:
            address = mmap(NULL, <size_t>size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if address == MAP_FAILED:
                error = errno
        if address == MAP_FAILED:
            raise OSError(error, os.strerror(error))
        self.address = <unsigned char*>address
        self.size = size
        posix_madvise(address, <size_t>size, POSIX_MADV_RANDOM)

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        if self.address == NULL or self.closing:
            raise ValueError("cannot use a closed mapping")
        PyBuffer_FillInfo(buffer, self, self.address, self.size, 0, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer* buffer):
        self.exports -= 1
        if self.closing and self.exports == 0:
            self._unmap()

    def __len__(self):
        return self.size

    @property
    def closed(self) -> bool:
        return self.address == NULL or self.closing

    def close(self):
        """Unmap now, or when the last buffer of it is released."""
        self.closing = True
        if self.exports == 0:
            self._unmap()

    cdef void _unmap(self) noexcept:
        if self.address != NULL:
            munmap(self.address, <size_t>self.size)
            self.address = NULL

    def __dealloc__(self):
        self._unmap()


def map_file(int fd, Py_ssize_t size):
    """A Mapping of the first `size` bytes of the file open (read-write) as `fd`. The caller
    checks that the file has all its blocks allocated: storing into a hole needs a block, and
    a full disk then kills the process with SIGBUS instead of failing a write."""
    return Mapping(fd, size)


def filesystem_magic(int fd):
    """The filesystem type (statfs f_type) holding `fd`; 0 where the platform cannot say."""
    cdef long long magic
    cdef int error = 0
    with nogil:
        magic = carbyne_filesystem_magic(fd)
        if magic < 0:
            error = errno
    if magic < 0:
        raise OSError(error, os.strerror(error))
    return magic


def file_status(path):
    """(st_dev, st_ino, st_size, st_blocks, is a regular file) of `path` (str, bytes or
    PathLike), following symlinks; OSError (FileNotFoundError, ...) as os.stat raises it.
    The few fields a revalidation needs, without building an os.stat_result."""
    cdef bytes encoded = os.fsencode(path)
    cdef const char* name = encoded
    cdef struct_stat status
    cdef int error = 0
    with nogil:
        if stat_path(name, &status) != 0:
            error = errno  # read before the GIL is taken back
    if error:
        raise OSError(error, os.strerror(error), os.fsdecode(encoded))
    return (status.st_dev, status.st_ino, status.st_size, status.st_blocks,
            S_ISREG(status.st_mode) != 0)


cdef class _Target:
    """A kernel call's I/O target: a descriptor, or the buffer of a mapped file (held for
    the duration of the call)."""

    cdef Io io
    cdef Py_buffer view
    cdef bint holding

    cdef int open(self, object target, bint writable) except -1:
        if isinstance(target, int):
            self.io.fd = target
            self.io.base = NULL
            self.io.size = 0
            return 0
        PyObject_GetBuffer(target, &self.view, PyBUF_WRITABLE if writable else PyBUF_SIMPLE)
        self.holding = True
        self.io.fd = -1
        self.io.base = <unsigned char*>self.view.buf
        self.io.size = self.view.len
        return 0

    def __dealloc__(self):
        if self.holding:
            PyBuffer_Release(&self.view)


cdef _Target target_of(object target, bint writable):
    cdef _Target result = _Target.__new__(_Target)
    result.open(target, writable)
    return result


def read_at(target, int64_t size, int64_t offset):
    """Exactly `size` bytes at `offset` of a descriptor or mapped file, or EOFError."""
    cdef Status status
    cdef _Target where = target_of(target, False)
    cdef bytearray data = bytearray(size)
    cdef unsigned char* buffer = data
    cdef int code
    status.code = STATUS_OK
    with nogil:
        code = read_exact(&where.io, buffer, size, offset, &status)
    if code < 0:
        raise_for(&status)
    return bytes(data)


def write_at(target, const unsigned char[::1] data, int64_t offset):
    """Write all of `data` at `offset` (a mapped file: EOFError past its end, nothing written)."""
    cdef Status status
    cdef _Target where = target_of(target, True)
    cdef int code
    cdef int64_t size = data.shape[0]
    status.code = STATUS_OK
    if size == 0:
        return
    with nogil:
        code = write_all(&where.io, &data[0], size, offset, &status)
    if code < 0:
        raise_for(&status)


def fill_zeros(int fd, int64_t offset, int64_t length):
    """Write `length` zero bytes at `offset`: up to 64 blocks of 64 KiB per pwritev."""
    cdef int64_t blocks
    cdef ssize_t put
    cdef int error = 0
    with nogil:
        while length > 0:
            blocks = (length + ZERO_BLOCK - 1) // ZERO_BLOCK
            if blocks == 1:
                put = carbyne_pwrite_repeated(fd, ZEROS, length, 1, offset)
            else:  # whole blocks only; the last partial one goes out on its own
                put = carbyne_pwrite_repeated(fd, ZEROS, ZERO_BLOCK,
                                              <int>min(blocks - (length % ZERO_BLOCK != 0), 64),
                                              offset)
            if put < 0 and errno == EINTR:
                continue
            if put <= 0:
                error = errno if put < 0 else EIO
                break
            offset += put
            length -= put
    if error:
        raise OSError(error, os.strerror(error))


def allocate(int fd, int64_t offset, int64_t length):
    """Make `length` bytes at `offset` zeros with their blocks allocated (the file grows to
    cover them): fallocate(2) where the filesystem supports it, else written zeros."""
    cdef int error
    if length <= 0:
        return
    with nogil:
        error = carbyne_fallocate(fd, offset, length)
    if error == EOPNOTSUPP or error == ENOSYS:
        fill_zeros(fd, offset, length)
    elif error:
        raise OSError(error, os.strerror(error))


cdef int touch_archive_starts(int fd, const int64_t* table, int64_t archives, int64_t header_size,
                              int64_t data_end, Status* status) noexcept nogil:
    """Write the zeros of the page each archive starts in, past the header's page.

    A file's first write lands at the start of every archive; with that page already
    written, the first store through the file's mapping is an ordinary fault rather than
    one that prepares a page of the fallocated (unwritten) extent. Measured on the daemon's
    cold benchmark: 6-12% less CPU per point (benchmarks/RESULTS-carbon.md). The bytes stay
    zeros. `table` is Header.table (offset, step, points per archive)."""
    cdef Io io
    cdef int64_t k, start, end
    cdef int64_t past_header = header_size - header_size % PAGE_HINT + PAGE_HINT
    io.fd = fd
    io.base = NULL
    io.size = 0
    for k in range(archives):
        start = table[3 * k]
        end = min(start - start % PAGE_HINT + PAGE_HINT, data_end)
        if start < past_header or end <= start:
            continue  # in the header's page, which the header's write made already
        if write_all(&io, ZEROS, end - start, start, status) < 0:
            return status.code
    return STATUS_OK


def create_file(path, const unsigned char[::1] header not None, table, int64_t data_end,
                bint sparse, bint make_parent):
    """Create a Whisper file in one call without the GIL: mkdir its folder (when asked; one
    level, an existing one is fine), open it O_EXCL, write `header`, then give the data area up
    to `data_end` its blocks (fallocate, written zeros where unsupported; the page each
    archive starts in, from `table` (Header.table), is written: see touch_archive_starts)
    or, `sparse`, write its last byte. Returns (fd, st_dev, st_ino, st_size, st_blocks) of the new file, open
    read-write. Errors are os's (FileExistsError, FileNotFoundError when a folder above is
    missing, ...); a file that fails half-way is removed."""
    cdef bytes encoded = os.fsencode(path)
    cdef char* name = encoded
    cdef bytes parent_encoded = os.path.dirname(encoded) or b"."
    cdef char* parent = parent_encoded
    cdef int64_t header_size = header.shape[0]
    cdef const int64_t* rows = <const int64_t*>array_data(table, cnp.NPY_INT64, 2, False, "table")
    cdef int64_t archives = cnp.PyArray_DIM(<cnp.ndarray>table, 0)
    cdef int fd = -1, error = 0, code
    cdef bint fill = False, in_parent = False
    cdef Status status
    cdef Io io
    cdef struct_stat info
    if header_size == 0 or data_end < header_size:
        raise ValueError(f"cannot create path={os.fsdecode(encoded)!r}: {header_size}-byte "
                         f"header, data ending at {data_end}")
    status.code = STATUS_OK
    with nogil:
        if make_parent and mkdir(parent, 0o777) != 0 and errno != EEXIST:
            error = errno
            in_parent = True
        if not error:
            fd = open_path(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd < 0:
                error = errno
        if fd >= 0:
            io.fd = fd
            io.base = NULL
            io.size = 0
            code = write_all(&io, &header[0], header_size, 0, &status)
            if code < 0:
                error = status.errno_value if status.code == STATUS_OS else EIO
            elif data_end > header_size:
                if sparse:
                    code = write_all(&io, ZEROS, 1, data_end - 1, &status)
                    if code < 0:
                        error = status.errno_value if status.code == STATUS_OS else EIO
                else:
                    error = carbyne_fallocate(fd, header_size, data_end - header_size)
                    if error == EOPNOTSUPP or error == ENOSYS:
                        error = 0
                        fill = True
                    elif not error and touch_archive_starts(fd, rows, archives, header_size,
                                                            data_end, &status) < 0:
                        error = status.errno_value if status.code == STATUS_OS else EIO
            if not error and not fill and fstat(fd, &info) != 0:
                error = errno
    try:
        if error:
            raise OSError(error, os.strerror(error), os.fsdecode(parent_encoded if in_parent else encoded))
        if fill:
            fill_zeros(fd, header_size, data_end - header_size)
            if fstat(fd, &info) != 0:
                raise OSError(errno, os.strerror(errno), os.fsdecode(encoded))
    except BaseException:
        if fd >= 0:
            close(fd)
            unlink(name)
        raise
    return fd, info.st_dev, info.st_ino, info.st_size, info.st_blocks


def pack_points(const int64_t[::1] timestamps, const double[::1] values):
    """Points as the file stores them: 12 bytes each, big-endian uint32 then float64."""
    cdef int64_t n = timestamps.shape[0], i
    if values.shape[0] != n:
        raise ValueError("cannot pack points: timestamps and values differ in length")
    cdef bytearray data = bytearray(n * POINT_SIZE)
    cdef unsigned char* out = data
    for i in range(n):
        if timestamps[i] < 0 or timestamps[i] >= UINT32_LIMIT:
            raise OverflowError(f"cannot write timestamp={timestamps[i]}: not a 32-bit unsigned number")
    with nogil:
        for i in range(n):
            store_point(out + i * POINT_SIZE, timestamps[i], values[i])
    return bytes(data)


def newest_first(timestamps, values):
    """Points in arrival order as update_many takes them: (int64 timestamps, float64 values),
    newest first, each second once. Of points in one second the one with the smallest
    timestamp wins, of equal timestamps the last arrival: carbon's cache keeps the last
    arrival of each timestamp and hands them to whisper sorted, and whisper keeps the first
    of each int(). `timestamps` is a 1-d int64 or float64 array (floats truncated towards
    zero like int(); ValueError when one is not finite), `values` float64 of the same length."""
    cdef cnp.ndarray stamps_in = <cnp.ndarray>timestamps
    cdef cnp.ndarray values_in = <cnp.ndarray>values
    cdef bint floats
    if not cnp.PyArray_Check(timestamps) or not cnp.PyArray_Check(values):
        raise TypeError("cannot order points: timestamps and values must be numpy arrays")
    floats = cnp.PyArray_TYPE(stamps_in) == cnp.NPY_FLOAT64
    cdef const void* raw = array_data(timestamps, cnp.NPY_FLOAT64 if floats else cnp.NPY_INT64,
                                      1, False, "timestamps")
    cdef const double* points = <const double*>array_data(values, cnp.NPY_FLOAT64, 1, False,
                                                          "values")
    cdef int64_t n = cnp.PyArray_DIM(stamps_in, 0), i, kept = 0, k, best
    if cnp.PyArray_DIM(values_in, 0) != n:
        raise ValueError("cannot order points: timestamps and values differ in length")
    cdef cnp.ndarray stamps_out = np.empty(n, dtype=np.int64)
    cdef cnp.ndarray values_out = np.empty(n, dtype=np.float64)
    cdef int64_t* out_stamps = <int64_t*>cnp.PyArray_DATA(stamps_out)
    cdef double* out_values = <double*>cnp.PyArray_DATA(values_out)
    cdef int64_t* keys
    cdef int64_t* order
    cdef bint increasing = True
    cdef bint finite = True
    if n == 0:
        return stamps_out, values_out
    keys = <int64_t*>malloc(3 * n * sizeof(int64_t))
    if keys == NULL:
        raise MemoryError()
    order = keys + n
    try:
        with nogil:
            for i in range(n):
                if floats:
                    finite = finite and truncated(( <const double*>raw)[i], &keys[i])
                else:
                    keys[i] = (<const int64_t*>raw)[i]
                if i and keys[i] <= keys[i - 1]:
                    increasing = False
            if finite:
                if increasing:  # the usual case: reversed, nothing to drop
                    for i in range(n):
                        out_stamps[i] = keys[n - 1 - i]
                        out_values[i] = points[n - 1 - i]
                    kept = n
                else:
                    for i in range(n):
                        order[i] = i
                    stable_sort(keys, order, order + n, n)  # ascending, arrivals in order
                    k = n - 1
                    while k >= 0:  # each second's winner, newest first
                        best = order[k]
                        k -= 1
                        while k >= 0 and keys[order[k]] == keys[best]:
                            if floats and (<const double*>raw)[order[k]] < (<const double*>raw)[best]:
                                best = order[k]  # an earlier moment in the same second
                            k -= 1
                        out_stamps[kept] = keys[best]
                        out_values[kept] = points[best]
                        kept += 1
    finally:
        free(keys)
    if not finite:
        raise ValueError("cannot order points: not all timestamps are finite")
    if kept < n:
        return stamps_out[:kept].copy(), values_out[:kept].copy()
    return stamps_out, values_out


cdef inline bint truncated(double value, int64_t* out) noexcept nogil:
    """int64 of a float timestamp as numpy's astype gives it on x86 (towards zero; out of
    range: INT64_MIN); False for NaN and infinities."""
    if value != value or value == INFINITY or value == -INFINITY:
        return False
    if -9223372036854775808.0 <= value < 9223372036854775808.0:
        out[0] = <int64_t>value
    else:
        out[0] = <int64_t>(-9223372036854775807 - 1)
    return True


def unpack_points(const unsigned char[::1] data):
    """Inverse of pack_points; a trailing partial point is ignored."""
    cdef int64_t n = data.shape[0] // POINT_SIZE, i
    timestamps = np.empty(n, dtype=np.int64)
    values = np.empty(n, dtype=np.float64)
    cdef int64_t[::1] out_timestamps = timestamps
    cdef double[::1] out_values = values
    with nogil:
        for i in range(n):
            out_timestamps[i] = load_u32(&data[i * POINT_SIZE])
            out_values[i] = load_f64(&data[i * POINT_SIZE])
    return timestamps, values


def fetch_archive(target, int64_t offset, int64_t step, int64_t points, int64_t from_interval,
                  int64_t until_interval, double[::1] values, uint8_t[::1] known):
    """Read one archive for [from_interval, until_interval) into values/known; returns how
    many values whisper would return (see the twin for the exact rules)."""
    cdef Status status
    cdef Archive archive
    cdef int64_t count
    cdef int64_t capacity = min(values.shape[0], known.shape[0])
    if capacity == 0:
        raise ValueError("cannot fetch into empty arrays")
    cdef _Target where = target_of(target, False)
    status.code = STATUS_OK
    archive.index = 0
    archive.offset = offset
    archive.step = step
    archive.points = points
    with nogil:
        count = fetch_core(&where.io, &archive, from_interval, until_interval, &values[0],
                           &known[0], capacity, &status)
    if count < 0:
        raise_for(&status)
    return count


cdef void* array_data(object array, int typenum, int ndim, bint writable,
                      str name) except NULL:
    """The data of a C-contiguous numpy array of the given type and dimensions (checked
    directly: typed memoryviews cost more than the write they set up)."""
    cdef cnp.ndarray checked
    if not cnp.PyArray_Check(array):
        raise TypeError(f"cannot update: {name} must be a numpy array")
    checked = <cnp.ndarray>array
    if cnp.PyArray_TYPE(checked) != typenum or cnp.PyArray_NDIM(checked) != ndim \
            or not cnp.PyArray_IS_C_CONTIGUOUS(checked):
        raise ValueError(f"cannot update: {name} must be a C-contiguous {ndim}-d "
                         f"{np.dtype(cnp.PyArray_TypeObjectFromType(typenum)).name} array")
    if writable and not cnp.PyArray_ISWRITEABLE(checked):
        raise ValueError(f"cannot update: {name} must be writable")
    if cnp.PyArray_SIZE(checked) == 0:
        return <void*>&ZEROS[0]  # never read: callers check the lengths first
    return cnp.PyArray_DATA(checked)


cdef int open_whisper(Whisper* file, _Target where, object table, int aggregation_type,
                      double xff, object bases) except -1:
    cdef int64_t archives
    file.table = <const int64_t*>array_data(table, cnp.NPY_INT64, 2, False, "table")
    archives = cnp.PyArray_DIM(<cnp.ndarray>table, 0)
    if archives == 0 or cnp.PyArray_DIM(<cnp.ndarray>table, 1) != 3:
        raise ValueError("cannot update: the archive table needs one (offset, step, points) row per archive")
    file.bases = <int64_t*>array_data(bases, cnp.NPY_INT64, 1, True, "bases")
    if cnp.PyArray_DIM(<cnp.ndarray>bases, 0) != archives:
        raise ValueError(f"cannot update: bases holds {cnp.PyArray_DIM(<cnp.ndarray>bases, 0)} "
                         f"entries for {archives} archives")
    file.io = where.io
    file.archives = archives
    file.aggregation = aggregation_type
    file.xff = xff
    return 0


def update_many(target, table, int aggregation_type, double xff, timestamps, values,
                int64_t now, bases):
    """whisper.file_update_many on points in processing order; returns points kept.

    `target` is a descriptor or a writable buffer holding the whole file (a Mapping); the
    others are numpy arrays: table (archives x 3 int64, Header.table), timestamps (int64),
    values (float64). `bases` (one int64 per archive, 0 = unknown) caches each archive's
    slot-0 timestamp across calls on the same file; it is read and updated in place."""
    cdef Status status
    cdef Whisper file
    cdef const int64_t* stamps = <const int64_t*>array_data(timestamps, cnp.NPY_INT64, 1, False,
                                                            "timestamps")
    cdef const double* points = <const double*>array_data(values, cnp.NPY_FLOAT64, 1, False,
                                                          "values")
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>timestamps, 0)
    cdef int64_t kept
    if cnp.PyArray_DIM(<cnp.ndarray>values, 0) != n:
        raise ValueError("cannot update: timestamps and values differ in length")
    cdef _Target where = target_of(target, True)
    open_whisper(&file, where, table, aggregation_type, xff, bases)
    if n == 0:
        return 0
    status.code = STATUS_OK
    with nogil:
        kept = update_many_core(&file, stamps, points, n, now, &status)
    if kept < 0:
        raise_for(&status)
    return kept


def archive_update_many(target, table, int aggregation_type, double xff, int64_t archive,
                        timestamps, values, bases):
    """Chronological points into one archive, then propagation (whisper's merge uses this)."""
    cdef Status status
    cdef Whisper file
    cdef const int64_t* stamps = <const int64_t*>array_data(timestamps, cnp.NPY_INT64, 1, False,
                                                            "timestamps")
    cdef const double* points = <const double*>array_data(values, cnp.NPY_FLOAT64, 1, False,
                                                          "values")
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>timestamps, 0)
    cdef int code
    if cnp.PyArray_DIM(<cnp.ndarray>values, 0) != n:
        raise ValueError("cannot update: timestamps and values differ in length")
    cdef _Target where = target_of(target, True)
    open_whisper(&file, where, table, aggregation_type, xff, bases)
    if not 0 <= archive < file.archives:
        raise IndexError(f"cannot update archive={archive}: the file has {file.archives}")
    if n == 0:
        return
    status.code = STATUS_OK
    with nogil:
        code = archive_update_core(&file, archive, stamps, points, n, &status)
    if code < 0:
        raise_for(&status)

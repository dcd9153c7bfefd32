"""The Whisper kernels this process runs: the compiled native.whisper_kernels when it was built,
else its pure twin storage.whisper.kernels_py (same functions, slower). `NATIVE` says which;
a test fails when it is False, so a broken build cannot pass unnoticed on the slow path.

Kernels take a *target*: a file descriptor, or the buffer of a whole mapped file (map_file).
"""
try:
    from native import whisper_kernels as _implementation

    NATIVE = True
except ImportError:  # not built: run the readable twin
    from . import kernels_py as _implementation

    NATIVE = False

fetch_archive = _implementation.fetch_archive
update_many = _implementation.update_many
archive_update_many = _implementation.archive_update_many
fill_zeros = _implementation.fill_zeros
pack_points = _implementation.pack_points
newest_first = _implementation.newest_first
unpack_points = _implementation.unpack_points
read_at = _implementation.read_at
write_at = _implementation.write_at
allocate = _implementation.allocate
create_file = _implementation.create_file
map_file = _implementation.map_file
filesystem_magic = _implementation.filesystem_magic
file_status = _implementation.file_status

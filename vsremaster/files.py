"""Opening the files a user names (weights, reference images) without hanging or reading
more than they should hold.

A path is stat'ed before it is opened: opening a FIFO for reading blocks until a writer
comes, and a device or /proc file can stream forever, so anything but a regular file is
refused unopened. `open_regular` then opens without blocking and checks the open file
again (the path may have been swapped in between).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


class FileRefused(ValueError):
    """A path that is not a regular file of an acceptable size; the message says why.

    `reason` is the message without the path ("is a FIFO (named pipe), not a regular
    file ..."), for callers that name the file their own way.
    """

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class FileMissing(FileRefused, FileNotFoundError):
    """The path does not exist."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def describe_mode(mode: int) -> str:
    """What kind of file a stat mode is, in words ('a FIFO (named pipe)', ...)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def size_words(n: float) -> str:
    """A byte count for messages: '245.0 MB', '20.0 GB', '512 bytes'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def _check(st: os.stat_result, path: Path, max_bytes: int | None) -> int:
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(path, f"is {describe_mode(st.st_mode)}, not a regular file "
                                "(it was not opened)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise FileRefused(path, f"is {size_words(st.st_size)}, more than the "
                                f"{size_words(max_bytes)} allowed")
    return st.st_size


def check_regular_file(path, max_bytes: int | None = None) -> int:
    """The size of `path`, a regular file of at most `max_bytes`; FileRefused otherwise.

    Follows symlinks (a link to a regular file is fine). Never opens the file.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileMissing(path, "no such file") from None
    except OSError as e:
        raise FileRefused(path, f"cannot be examined ({e.strerror or e})") from None
    return _check(st, path, max_bytes)


def open_regular(path, max_bytes: int | None = None):
    """`path` opened for binary reading, once it is known to be a regular file of at most
    `max_bytes`; FileRefused (never a hang) otherwise."""
    path = Path(path)
    check_regular_file(path, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise FileRefused(path, f"cannot be opened ({e.strerror or e})") from None
    try:
        _check(os.fstat(fd), path, max_bytes)
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise

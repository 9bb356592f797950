"""A small bounded LRU mapping, safe to use from several threads."""
from __future__ import annotations

import threading
from collections import OrderedDict


class LRU:
    """At most `size` entries and, given `sizeof`, about `max_bytes` bytes (always at
    least the newest entry); the least recently used entries are dropped first.

    Each operation takes its own short lock, so looking up finished work never waits
    for the (long) computation of other work.
    """

    def __init__(self, size: int, max_bytes: int | None = None, sizeof=None):
        self.size = max(1, size)
        self.max_bytes, self.sizeof = max_bytes, sizeof
        self._data: OrderedDict = OrderedDict()
        self._bytes: dict = {}
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            if self.sizeof is not None:
                self._bytes[key] = self.sizeof(value)
            while len(self._data) > self.size or (len(self._data) > 1 and self.max_bytes
                                                  is not None and self.nbytes > self.max_bytes):
                old, _ = self._data.popitem(last=False)
                self._bytes.pop(old, None)

    @property
    def nbytes(self) -> int:
        """Bytes held (as `sizeof` counts them)."""
        return sum(self._bytes.values())

    def __contains__(self, key) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes.clear()

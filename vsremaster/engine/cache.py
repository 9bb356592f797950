"""A small bounded LRU mapping, safe to use from several threads."""
from __future__ import annotations

import threading
from collections import OrderedDict


class LRU:
    """At most `size` entries; the least recently used one is dropped first.

    Each operation takes its own short lock, so looking up finished work never waits
    for the (long) computation of other work.
    """

    def __init__(self, size: int):
        self.size = max(1, size)
        self._data: OrderedDict = OrderedDict()
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
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __contains__(self, key) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

"""A small bounded LRU mapping (callers hold the engine lock)."""
from __future__ import annotations

from collections import OrderedDict


class LRU:
    """At most `size` entries; the least recently used one is dropped first."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self._data: OrderedDict = OrderedDict()

    def get(self, key, default=None):
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key, value) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def __contains__(self, key) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()

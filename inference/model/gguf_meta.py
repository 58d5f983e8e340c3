"""A GGUF file's metadata (its key-value header), read without loading the model.

gguf-py's `GGUFReader` parses every array of the header into numpy, the tokenizer's 262K tokens included, which takes
seconds; what Cove needs to know about a model (architecture, size, context length, whether it has a chat template)
is a few scalars and strings. This reads the header through a memory map and skips arrays by their lengths.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cove.errors import ModelError

#: GGUF value types: struct format of each scalar type, by type id.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

Value = int | float | bool | str


class _Cursor:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> int | float | bool:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value  # type: ignore[no-any-return]

    def string(self) -> str:
        length = int(self.take("Q"))
        raw = self.data[self.at : self.at + length]
        self.at += length
        return raw.decode("utf-8", errors="replace")

    def value(self, kind: int) -> Value | None:
        """A scalar or string; an array is skipped (None)."""
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = int(self.take("I")), int(self.take("Q"))
            if item == _STRING:
                for _ in range(count):
                    length = int(self.take("Q"))  # read before `at` is (`at += take()` would add to the old one)
                    self.at += length
            elif item in _SCALARS:
                self.at += count * struct.calcsize(_SCALARS[item])
            else:
                for _ in range(count):
                    self.value(item)
            return None
        if kind not in _SCALARS:
            raise ModelError(f"unknown GGUF value type {kind}")
        return self.take(_SCALARS[kind])


def read_metadata(path: Path) -> dict[str, Value]:
    """The header's scalar and string values by key (arrays are left out); ModelError if it is not GGUF."""
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[:4] != b"GGUF":
                raise ModelError(f"{path} is not a GGUF file")
            cursor = _Cursor(data)
            cursor.at = 4
            version = int(cursor.take("I"))
            if version < 2:
                raise ModelError(f"{path}: GGUF version {version} is too old")
            cursor.take("Q")  # tensors
            found: dict[str, Value] = {}
            for _ in range(int(cursor.take("Q"))):
                key = cursor.string()
                value = cursor.value(int(cursor.take("I")))
                if value is not None:
                    found[key] = value
            return found
    except (OSError, ValueError, struct.error) as err:
        raise ModelError(f"cannot read the metadata of {path}: {err}") from err

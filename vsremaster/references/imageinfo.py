"""An image file's size and depth from its header, before anything is decoded.

Small readers for the formats the reference loader decodes (PNG, JPEG, BMP, TIFF,
WebP), recognised by content, not by name. Each reads a bounded number of bytes; what
they cannot read is not decoded either (OpenCV would otherwise allocate whatever a
header claims, up to its own limit of 2^30 pixels).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

#: JPEG segments and TIFF directory entries read at most (real files have dozens).
_MAX_SEGMENTS = 4096
_MAX_IFD_ENTRIES = 4096
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class NotAnImage(ValueError):
    """A header this module cannot read; the message says what is wrong."""


@dataclass(frozen=True)
class ImageInfo:
    """What a header declares: format, size, samples per pixel and bits per sample."""

    kind: str
    width: int
    height: int
    channels: int
    bits: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the decoded colour image (at least 3 channels, samples of `bits`)."""
        return self.pixels * max(self.channels, 3) * -(-self.bits // 8)

    def describe(self) -> str:
        return f"{self.width}x{self.height} {self.kind}, {self.channels}x{self.bits} bit"


def probe(f) -> ImageInfo:
    """The header of the image in binary file `f` (read from its start)."""
    f.seek(0)
    head = f.read(32)
    for magic, reader in _READERS:
        if head.startswith(magic):
            try:
                info = reader(f, head)
            except (struct.error, IndexError):
                raise NotAnImage("the header is cut short (truncated file)") from None
            if info.width <= 0 or info.height <= 0:
                raise NotAnImage(f"its {info.kind} header gives a size of "
                                 f"{info.width}x{info.height}")
            return info
    raise NotAnImage("not a PNG, JPEG, BMP, TIFF or WebP file")


def _read(f, offset: int, n: int) -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) < n:
        raise NotAnImage("the header is cut short (truncated file)")
    return data


def _png(f, head: bytes) -> ImageInfo:
    if head[12:16] != b"IHDR":
        raise NotAnImage("a PNG file without its IHDR header first")
    width, height, bits, colour = struct.unpack(">IIBB", _read(f, 16, 10))
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour)
    if channels is None or bits not in (1, 2, 4, 8, 16):
        raise NotAnImage(f"a PNG header with colour type {colour} at {bits} bits")
    return ImageInfo("PNG", width, height, channels, max(bits, 8))


def _jpeg(f, head: bytes) -> ImageInfo:
    pos = 2
    for _ in range(_MAX_SEGMENTS):
        marker = _read(f, pos, 2)
        if marker[0] != 0xFF:
            raise NotAnImage("a JPEG file whose segments do not follow each other")
        kind = marker[1]
        if kind == 0xFF:                         # fill byte before a marker
            pos += 1
            continue
        if kind in (0x01, *range(0xD0, 0xD8)):   # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", _read(f, pos + 2, 2))
        if kind in _JPEG_SOF:
            bits, height, width, channels = struct.unpack(">BHHB", _read(f, pos + 4, 6))
            return ImageInfo("JPEG", width, height, channels, 16 if bits > 8 else 8)
        if kind in (0xDA, 0xD9) or length < 2:
            break
        pos += 2 + length
    raise NotAnImage("a JPEG file without a frame header (SOF) where one belongs")


def _bmp(f, head: bytes) -> ImageInfo:
    (dib,) = struct.unpack("<I", _read(f, 14, 4))
    if dib == 12:
        width, height, _, bits = struct.unpack("<HHHH", _read(f, 18, 8))
    elif 40 <= dib <= 124:
        width, height, _, bits = struct.unpack("<iiHH", _read(f, 18, 12))
        height = abs(height)                     # negative: stored top-down
    else:
        raise NotAnImage(f"a BMP file with an unknown header of {dib} bytes")
    return ImageInfo("BMP", width, height, 4 if bits == 32 else 3, 8)


def _tiff(f, head: bytes) -> ImageInfo:
    end = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(end + "H", head[2:4])[0] == 43          # BigTIFF
    if big:
        (first,) = struct.unpack(end + "Q", head[8:16])
        count_fmt, entry_size, value_at = "Q", 20, 12
    else:
        (first,) = struct.unpack(end + "I", head[4:8])
        count_fmt, entry_size, value_at = "H", 12, 8
    count_size = struct.calcsize(count_fmt)
    (count,) = struct.unpack(end + count_fmt, _read(f, first, count_size))
    if count > _MAX_IFD_ENTRIES:
        raise NotAnImage(f"a TIFF directory of {count} entries")
    table = _read(f, first + count_size, count * entry_size)
    tags = {}
    for i in range(count):
        entry = table[i * entry_size:(i + 1) * entry_size]
        tag, kind = struct.unpack(end + "HH", entry[:4])
        if tag in (256, 257, 258, 277):
            # SHORT (3) or LONG (4)/LONG8 (16) values; the first one is inline
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is None:
                raise NotAnImage(f"a TIFF tag {tag} of type {kind}")
            n = struct.unpack(end + ("Q" if big else "I"), entry[4:value_at])[0]
            room = entry_size - value_at
            raw = entry[value_at:] if n * struct.calcsize(fmt) <= room else _read(
                f, struct.unpack(end + ("Q" if big else "I"), entry[value_at:])[0],
                struct.calcsize(fmt))
            tags[tag] = struct.unpack(end + fmt, raw[:struct.calcsize(fmt)])[0]
    if 256 not in tags or 257 not in tags:
        raise NotAnImage("a TIFF directory without the image's width and height")
    return ImageInfo("TIFF", tags[256], tags[257], tags.get(277, 1), max(tags.get(258, 1), 8))


def _webp(f, head: bytes) -> ImageInfo:
    if head[8:12] != b"WEBP":
        raise NotAnImage("a RIFF file that is not WebP")
    chunk = head[12:16]
    if chunk == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise NotAnImage("a WebP (VP8) frame without its start code")
        width, height = struct.unpack("<HH", head[26:30])
        return ImageInfo("WebP", width & 0x3FFF, height & 0x3FFF, 3, 8)
    if chunk == b"VP8L":
        if head[20] != 0x2F:
            raise NotAnImage("a lossless WebP (VP8L) without its signature")
        (bits,) = struct.unpack("<I", head[21:25])
        return ImageInfo("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4, 8)
    if chunk == b"VP8X":
        size = _read(f, 24, 6)
        width = int.from_bytes(size[:3], "little") + 1
        height = int.from_bytes(size[3:], "little") + 1
        return ImageInfo("WebP", width, height, 4, 8)
    raise NotAnImage(f"a WebP file with a {chunk!r} chunk first")


_READERS = ((b"\x89PNG\r\n\x1a\n", _png), (b"\xff\xd8", _jpeg), (b"BM", _bmp),
            (b"II*\x00", _tiff), (b"MM\x00*", _tiff), (b"II+\x00", _tiff),
            (b"MM\x00+", _tiff), (b"RIFF", _webp))

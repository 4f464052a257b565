"""HDF5's Fletcher-32 chunk checksum, computed and checked outside HDF5.

Shards store every dataset with HDF5's ``fletcher32`` filter: each chunk carries a 4-byte
checksum (little-endian, after the chunk's filtered bytes) that HDF5 checks on every read.
The writer compresses image chunks itself and stores them with ``write_direct_chunk``, and
the reader inflates them itself after ``read_direct_chunk`` (see
:mod:`avworld.data.storage`); both paths bypass HDF5's filter pipeline, so the writer appends the
checksum here (for HDF5's own reads), and the reader checks it here for chunks stored raw; a deflated
chunk is checked on that path by its zlib stream's Adler-32, which inflating verifies.
:func:`fletcher32` is bit-identical to HDF5's
``H5_checksum_fletcher32`` (big-endian 16-bit words, sums reduced with end-around carry,
so a non-zero sum is represented in 1..65535): tested against chunks HDF5 wrote itself.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 1 << 16  # words per dot product: sum2 of a block stays below 2**47 (int64, no BLAS threads)
_WEIGHTS = np.arange(_BLOCK, 0, -1, dtype=np.int64)  # word i of an L-word block counts L - i times in sum2


def _fold(x: int) -> int:
    """HDF5's representative of ``x`` modulo 65535: 0 only for 0, else 1..65535."""
    return 0 if x == 0 else (x - 1) % 65535 + 1


def fletcher32(data: bytes) -> int:
    """HDF5's Fletcher-32 checksum of ``data`` (an odd last byte counts as ``byte << 8``)."""
    n = len(data)
    words = np.frombuffer(data, dtype=">u2", count=n // 2).astype(np.int64)
    m = len(words)
    s1 = s2 = 0
    for a in range(0, m, _BLOCK):  # sum2 = sum over words of (words from it to the end) * word
        block = words[a:a + _BLOCK]
        part = int(block.sum())
        s2 += (m - a - len(block)) * part + int(np.dot(_WEIGHTS[_BLOCK - len(block):], block))
        s1 += part
    if n % 2:  # one more word at the end: every word counts once more in sum2
        s1 += data[-1] << 8
        s2 += s1
    return (_fold(s2) << 16) | _fold(s1)


def with_checksum(chunk: bytes) -> bytes:
    """``chunk`` followed by its Fletcher-32 checksum: what HDF5's filter stores."""
    return chunk + fletcher32(chunk).to_bytes(4, "little")


def strip_checksum(stored: bytes) -> bytes | None:
    """The chunk without its checksum, or None if the checksum does not match (a damaged chunk)."""
    if len(stored) < 4:
        return None
    body = stored[:-4]
    return body if fletcher32(body) == int.from_bytes(stored[-4:], "little") else None

"""Read files out of a tar archive without extracting it, refusing unsafe members
and archives that do not end where their writer ended them.

The archive is streamed once, front to back (gzip, bzip2, xz or no compression,
detected from the first bytes). Nothing is written to disk, yet every member is
still checked as if it were going to be extracted: an absolute path, a ``..``
component, a symbolic or hard link, a device or FIFO, or any other non-regular
file makes the whole archive be refused with :class:`UnsafeArchiveError`.

Completeness: a tar archive cut at a member boundary is itself a valid-looking
shorter archive, and ``tarfile`` stops at its end without complaint. So after the
last member, the block where the next header would be must be the tar
end-of-archive marker (a block of zeros), and the compressed stream is read to
its end, where the decompressor checks its own end marker and checksum (gzip's
CRC-32 and size, bzip2's and xz's checks). A truncated or corrupt archive raises
:class:`CorruptArchiveError` naming the file. Both errors are ``ValueError`` s.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import lzma
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import IO

#: Size of the reads tarfile makes from the decompressed stream.
_BUFSIZE = 64 * 1024
_BLOCK = tarfile.BLOCKSIZE
#: Leading bytes of each compressed format and the reader that decompresses it.
_COMPRESSED: tuple[tuple[bytes, Callable[[IO[bytes]], IO[bytes]]], ...] = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
#: Errors of a damaged archive (gzip's BadGzipFile and bz2's are OSErrors).
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


class UnsafeArchiveError(ValueError):
    """An archive member could write outside the target or is not a plain file."""


class CorruptArchiveError(ValueError):
    """The archive cannot be read to its end (truncated, corrupt, not a tar)."""


def iter_archive(
    path: str | os.PathLike[str], select: Callable[[str], bool]
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, content)`` of the regular files that ``select`` keeps.

    The end-of-archive checks (module docstring) run when the iteration reaches
    the end, so consume the iterator fully before trusting what it yielded.

    Args:
        path: a ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` archive.
        select: called with each regular file's name (POSIX, as stored); only
            files it returns ``True`` for are read.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        UnsafeArchiveError: at the first unsafe member (the message names it).
        CorruptArchiveError: when the archive cannot be decompressed or parsed,
            or ends before its tar or compression end marker (truncated).
    """
    path = os.fspath(path)
    if not callable(select):
        raise TypeError(f"select: expected a callable, got {type(select).__name__}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no such archive file: {path!r}.")
    with open(path, "rb") as raw:
        try:
            with _decompressed(raw) as data:
                stream = _Recorder(data)
                with tarfile.open(fileobj=stream, mode="r|", bufsize=_BUFSIZE) as tar:
                    for member in tar:
                        check_member(member, path)
                        if member.isfile() and select(member.name):
                            yield member.name, _read_member(tar, member, path)
                    end = tar.offset
                    block = stream.block_at(end)
                stream.drain()  # the decompressor checks its end marker and checksum
        except _READ_ERRORS as err:
            raise CorruptArchiveError(
                f"{path}: cannot read the archive ({type(err).__name__}: {err}). It "
                "is truncated, corrupt or not a tar archive; download it again."
            ) from err
    if block != bytes(_BLOCK):
        found = "ends" if len(block) < _BLOCK else "has a block that is no tar header"
        raise CorruptArchiveError(
            f"{path}: the tar stream {found} at byte {end} where the next member or "
            "the end-of-archive marker should be: the archive is truncated or "
            "corrupt (it was cut short, e.g. an interrupted download or copy). "
            "Download it again."
        )


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:  # pragma: no cover - isfile() guarantees one
        raise CorruptArchiveError(f"{path}: cannot read {member.name}.")
    return handle.read()


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    head = raw.read(8)
    raw.seek(0)
    for magic, reader in _COMPRESSED:
        if head.startswith(magic):
            return reader(raw)
    return raw


class _Recorder:
    """A forward-only reader that remembers the bytes it handed out last (at
    least ``2 * _BUFSIZE``), so the block where tarfile stopped can be read
    again without seeking back in a compressed stream."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._pos = 0  # bytes handed out so far
        self._kept: collections.deque[bytes] = collections.deque()
        self._kept_size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._pos += len(data)
        self._kept.append(data)
        self._kept_size += len(data)
        while self._kept_size - len(self._kept[0]) >= 2 * _BUFSIZE:
            self._kept_size -= len(self._kept.popleft())
        return data

    def block_at(self, offset: int) -> bytes:
        """The (up to) ``_BLOCK`` bytes of the stream at ``offset``."""
        if self._pos < offset + _BLOCK:
            self.read(offset + _BLOCK - self._pos)
        start = self._pos - self._kept_size
        if offset < start:  # pragma: no cover - tarfile reads at most _BUFSIZE ahead
            raise RuntimeError(f"offset {offset} is no longer buffered ({start}).")
        kept = b"".join(self._kept)
        return kept[offset - start : offset - start + _BLOCK]

    def drain(self) -> None:
        while self._f.read(_BUFSIZE):
            pass


def check_member(member: tarfile.TarInfo, archive: str = "archive") -> None:
    """Raise :class:`UnsafeArchiveError` unless ``member`` is a regular file or a
    directory with a relative path that stays inside the extraction folder."""
    name = member.name
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        reason = "an absolute path"
    elif ".." in parts:
        reason = "a '..' path component"
    elif member.issym() or member.islnk():
        reason = f"a link (to {member.linkname!r})"
    elif member.isdev():
        reason = "a device or FIFO"
    elif not (member.isfile() or member.isdir()):
        reason = f"an unsupported member type ({member.type!r})"
    else:
        return
    raise UnsafeArchiveError(
        f"{archive}: refusing the archive because member {name!r} is {reason}. "
        "Only regular files and directories with relative paths are accepted."
    )

"""Read files out of a tar archive without extracting it, refusing unsafe members.

The archive is streamed once, front to back (any compression ``tarfile``
detects). Nothing is written to disk, yet every member is still checked as if
it were going to be extracted: an absolute path, a ``..`` component, a symbolic
or hard link, a device or FIFO, or any other non-regular file makes the whole
archive be refused with :class:`UnsafeArchiveError`. A truncated or corrupt
archive raises :class:`CorruptArchiveError`. Both are ``ValueError`` s.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath


class UnsafeArchiveError(ValueError):
    """An archive member could write outside the target or is not a plain file."""


class CorruptArchiveError(ValueError):
    """The archive cannot be read to the end (truncated, corrupt, not a tar)."""


def iter_archive(
    path: str | os.PathLike[str], select: Callable[[str], bool]
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, content)`` of the regular files that ``select`` keeps.

    Args:
        path: a ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` archive.
        select: called with each regular file's name (POSIX, as stored); only
            files it returns ``True`` for are read.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        UnsafeArchiveError: at the first unsafe member (the message names it).
        CorruptArchiveError: when the archive cannot be decompressed or parsed.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no such archive file: {path!r}.")
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                check_member(member, path)
                if member.isfile() and select(member.name):
                    handle = tar.extractfile(member)
                    if handle is None:  # pragma: no cover - isfile() guarantees one
                        raise CorruptArchiveError(f"{path}: cannot read {member.name}.")
                    yield member.name, handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise CorruptArchiveError(
            f"{path}: cannot read the archive ({type(err).__name__}: {err}). It is "
            "truncated, corrupt or not a tar archive; download it again."
        ) from err


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

"""Files the grader reads and writes where a submission may have planted something: opened
without following symlinks and without blocking, read only up to a limit, written atomically."""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_NO_FOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class FileRefused(ValueError):
    """:func:`read_regular` would not read the file: not a regular file, or over its limit.

    Attributes:
        regular: whether it is a regular file (``False``: a FIFO, a folder, a device, ...).
        size: its size in bytes when it is too large (``None`` if that showed only on reading).
    """

    def __init__(self, name: str | os.PathLike, regular: bool, size: int | None = None) -> None:
        super().__init__(f"{name} is not a regular file" if not regular else f"{name} is too large")
        self.regular, self.size = regular, size


def read_regular(name: str | os.PathLike, limit: int | None = None, *, dir_fd: int | None = None) -> bytes:
    """The bytes of the regular file ``name`` (in the folder ``dir_fd``, if given), at most ``limit``.

    A symlink is refused by the open (``OSError``, ELOOP) and a FIFO does not block it; a missing
    file raises ``FileNotFoundError``. :class:`FileRefused` if it is not a regular file or is
    larger than ``limit``.
    """
    fd = os.open(name, os.O_RDONLY | _NO_FOLLOW, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(name, regular=False)
        if limit is not None and info.st_size > limit:
            raise FileRefused(name, regular=True, size=info.st_size)
        data = file.read() if limit is None else file.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise FileRefused(name, regular=True)
    return data


@contextmanager
def open_folder(path: Path) -> Iterator[int]:
    """A file descriptor of the folder ``path``, refused (OSError) if ``path`` is a symlink:
    files are then opened inside it by name, so swapping the folder later redirects nothing."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NO_FOLLOW)
    try:
        yield fd
    finally:
        os.close(fd)


def create_file(folder: int, name: str, mode: int = 0o644) -> int:
    """A descriptor for writing the new file ``name`` in ``folder``; FileExistsError if anything,
    a planted symlink included, is there already."""
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, mode, dir_fd=folder)


def replace_file(folder: int, name: str, data: bytes, *, overwrite: bool = True) -> None:
    """Put ``data`` at ``name`` in the folder ``folder`` atomically: written to a fresh hidden
    file there, flushed to disk, then renamed over ``name`` (or, without ``overwrite``, linked to
    it, which fails with FileExistsError if anything is there). Whatever was at ``name`` — a
    symlink included — is replaced, never written through."""
    temporary = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = create_file(folder, temporary)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        else:
            os.link(temporary, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
    finally:
        try:
            os.unlink(temporary, dir_fd=folder)
        except FileNotFoundError:
            pass

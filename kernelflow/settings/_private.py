"""Where a store's parts live on disk, and files only their owner can read.

The store is private to its user: kernelflow creates the home and every
folder in it with mode 0700 and every file with 0600, whatever the umask
(:meth:`StorePaths.ensure`, :func:`open_private`, :func:`write_private`), and
refuses a home that other users can write or that belongs to another user
(:meth:`StorePaths.check_private`): whoever can write the store could plant
results that kernelflow loads.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from kernelflow.errors import StoreNotPrivateError, StoreNotWritableError

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "StorePaths", "open_private", "write_private"]

PRIVATE_DIR = 0o700
"""Mode of every directory kernelflow creates in a store."""

PRIVATE_FILE = 0o600
"""Mode of every file kernelflow creates in a store."""


@dataclass(frozen=True)
class StorePaths:
    """Where each part of one store lives on disk."""

    home: Path

    @property
    def database(self) -> Path:
        """The DuckDB file users query."""
        return self.home / "kernelflow.duckdb"

    @property
    def lock(self) -> Path:
        """The file lock held while any process has the database open."""
        return self.home / "kernelflow.duckdb.lock"

    @property
    def journal(self) -> Path:
        """One append-only event file per process, folded into the database."""
        return self.journal_dir

    @functools.cached_property
    def journal_dir(self) -> Path:
        """The journal directory, computed once (looked up on every recorded event)."""
        return self.home / "journal"

    @property
    def results(self) -> Path:
        """Content-addressed result files."""
        return self.home / "results"

    @property
    def cache(self) -> Path:
        """One small index file per cache key, pointing at a result."""
        return self.home / "cache"

    @property
    def limits(self) -> Path:
        """Slot files of concurrency limits."""
        return self.home / "limits"

    @property
    def outputs(self) -> Path:
        """Executed notebooks of deployment runs."""
        return self.home / "outputs"

    @property
    def key(self) -> Path:
        """The store's secret key, which signs cache entries (created with the first one)."""
        return self.home / "kernelflow.key"

    @property
    def secrets(self) -> Path:
        """One private file per saved ``Secret`` (never in the database, which queries read)."""
        return self.home / "secrets"

    def ensure(self, *parts: Path) -> None:
        """Create the home and the given directories (default: just the home), private.

        Every directory created here gets mode 0700, whatever the umask; existing
        ones are left as they are. The home is checked with :meth:`check_private`.

        Raises
        ------
        StoreNotWritableError
            A directory cannot be created or written.
        StoreNotPrivateError
            Other users can write the home, or it belongs to another user.
        """
        home = self.home
        _make_dirs(home, home)
        self.check_private()
        for path in parts or (home,):
            if path != home:
                _make_dirs(path, home)
            if not os.access(path, os.W_OK | os.X_OK):
                raise StoreNotWritableError(
                    f"The store directory {path} is not writable; fix its permissions or "
                    "set KERNELFLOW_HOME to a directory you can write."
                )

    def check_private(self) -> None:
        """Refuse a home that other users can write, or that belongs to another user.

        Whoever can write the store could plant results that kernelflow loads (and
        with them, code it runs). A home that does not exist yet passes: kernelflow
        creates it private.

        Raises
        ------
        StoreNotPrivateError
            With the command that fixes it.
        """
        try:
            info = os.stat(self.home)
        except OSError:
            return  # missing: it is created private; unreadable: opening it says why
        if info.st_uid != os.geteuid():
            raise StoreNotPrivateError(
                f"The store directory {self.home} belongs to another user (uid {info.st_uid}), "
                "who could plant results kernelflow would load; set KERNELFLOW_HOME to a "
                "directory of your own."
            )
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            whom = {
                stat.S_IWGRP: "its group",
                stat.S_IWOTH: "every user",
                stat.S_IWGRP | stat.S_IWOTH: "its group and every user",
            }[info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)]
            raise StoreNotPrivateError(
                f"The store directory {self.home} can be written by {whom} (mode "
                f"{stat.S_IMODE(info.st_mode):o}), who could plant results kernelflow would "
                f"load; make it private with `chmod 700 {self.home}`."
            )


def _make_dirs(path: Path, home: Path) -> None:
    """Create ``path`` and its missing parents, like ``mkdir -p``.

    The home and everything created below it (or outside it) get mode 0700,
    whatever the umask; parents of the home are created as ``mkdir -p`` would.
    """
    missing: list[Path] = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        private = directory not in home.parents
        try:
            os.mkdir(directory, PRIVATE_DIR if private else 0o777)
            if private:
                os.chmod(directory, PRIVATE_DIR)  # the umask may have taken some of its bits
        except FileExistsError:
            continue  # another process made it meanwhile (or it is a file: reported below)
        except OSError as exc:
            raise StoreNotWritableError(
                f"Cannot create {path} ({exc.strerror}); set KERNELFLOW_HOME to a "
                "directory you can write."
            ) from None
    if missing and not os.path.isdir(path):
        raise StoreNotWritableError(
            f"Cannot create {path} (a file is in the way); set KERNELFLOW_HOME to a "
            "directory you can write."
        )


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` that creates the file with mode 0600, whatever the umask.

    An existing file of ours with a wider mode (from an older kernelflow) is made
    0600 too. ``O_CREAT`` and ``O_CLOEXEC`` are added to ``flags``.

    Returns
    -------
    int
        The open file descriptor.
    """
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) != PRIVATE_FILE and info.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        pass  # e.g. a read-only file system: the file stays as it is, in a private home
    return fd


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, as a file of mode 0600.

    The bytes go to a temporary file with a random name in the same directory
    (a fixed name could be created in advance, or be written by two processes
    at once), which is then renamed over ``path``: a reader sees the old file
    or the new one, never half of one.
    """
    target = os.fspath(path)
    directory, name = os.path.split(target)
    temporary = os.path.join(directory, f".{name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        try:
            os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken some of its bits
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise

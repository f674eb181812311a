"""The store's key: cache entries are signed, so only kernelflow's own are loaded.

A cache hit unpickles a result file, which can run any code. So an entry is
trusted only if it carries an HMAC-SHA256 made with the store's secret key,
``<home>/kernelflow.key`` (32 random bytes, mode 0600, created with the first
entry). The signature covers every field of the entry, including the result's
path and checksum, and the checksum covers the result file's bytes: a file
written by anything but kernelflow, or an entry pointing at one, is a miss.

The key is read once per process and store. It is created by linking a
complete temporary file into place, so a process that races another one to
create it reads one whole key, never half of one. It must be private: a key
that other users can read (or that belongs to another user) is refused, as is
a store directory they can write (:meth:`StorePaths.check_private`).

Deleting the key file invalidates every cache entry of the store: each is then
recomputed once, with a warning.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading

from kernelflow.errors import StoreError, StoreNotPrivateError
from kernelflow.settings import PRIVATE_FILE, StorePaths

__all__ = ["KEY_BYTES", "sign", "verify"]

KEY_BYTES = 32
"""Length of a store key (the size of an HMAC-SHA256 block's worth of entropy)."""

_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def sign(paths: StorePaths, purpose: bytes, data: bytes) -> str:
    """The hex HMAC-SHA256 of ``data`` under the store's key (created if missing).

    Parameters
    ----------
    paths
        The store whose key signs.
    purpose
        What is signed (e.g. ``b"cache entry v1"``): a signature made for one
        purpose never verifies for another.
    data
        The bytes to sign.
    """
    key = _key(paths, create=True)
    if key is None:  # removed by another process between its creation and our read
        raise StoreError(f"The store key {paths.key} was removed as it was made; try again.")
    return _mac(key, purpose, data)


def verify(paths: StorePaths, purpose: bytes, data: bytes, signature: object) -> bool:
    """Whether ``signature`` is the store key's signature of ``data`` for ``purpose``.

    False when the store has no key yet (so it never signed anything) or the
    signature is not a string. The key is read again once if it does not
    match, in case it was replaced since this process read it.
    """
    if not isinstance(signature, str):
        return False
    key = _key(paths, create=False)
    if key is None:
        return False
    if hmac.compare_digest(_mac(key, purpose, data), signature):
        return True
    with _lock:
        _keys.pop(str(paths.key), None)
    fresh = _key(paths, create=False)
    return (
        fresh is not None
        and fresh != key
        and hmac.compare_digest(_mac(fresh, purpose, data), signature)
    )


def _mac(key: bytes, purpose: bytes, data: bytes) -> str:
    return hmac.new(key, purpose + b"\n" + data, hashlib.sha256).hexdigest()


def _key(paths: StorePaths, *, create: bool) -> bytes | None:
    """The store's key, cached per process; None if there is none and ``create`` is False."""
    where = str(paths.key)
    key = _keys.get(where)
    if key is not None:
        return key
    with _lock:
        key = _keys.get(where)
        if key is None:
            paths.check_private()
            key = _read_key(paths)
            if key is None and create:
                _create_key(paths)
                key = _read_key(paths)
            if key is not None:
                _keys[where] = key
    return key


def _read_key(paths: StorePaths) -> bytes | None:
    """The key file's bytes, after checking it is private and whole; None if absent."""
    where = paths.key
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(
            f"Cannot read the store key {where} ({exc.strerror}); if it is a link or not "
            f"yours, remove it (rm {where}): cache entries are then recomputed once."
        ) from None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise StoreNotPrivateError(
                f"The store key {where} belongs to another user (uid {info.st_uid}), who "
                f"could sign results kernelflow would load; remove it (rm {where}) and "
                "kernelflow makes a new one."
            )
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StoreNotPrivateError(
                f"The store key {where} can be read or written by other users (mode "
                f"{stat.S_IMODE(info.st_mode):o}); make it private with `chmod 600 {where}`."
            )
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise StoreError(
            f"The store key {where} is damaged ({len(key)} bytes, not {KEY_BYTES}); remove "
            f"it (rm {where}) and kernelflow makes a new one (cache entries are recomputed once)."
        )
    return key


def _create_key(paths: StorePaths) -> None:
    """Write a new key, unless another process wins the race (then theirs is the key)."""
    paths.ensure()
    temporary = paths.home / f".kernelflow.key.{os.urandom(8).hex()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        try:
            os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken some of its bits
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)  # a key lost in a crash would orphan every entry signed with it
        finally:
            os.close(fd)
        try:
            # A hard link never replaces: whoever links first made the key.
            os.link(temporary, paths.key)
        except FileExistsError:
            pass
        except OSError:
            # A file system without hard links: a rename is atomic too, but replaces;
            # only do it while there is no key, so a lost race costs at most one miss.
            if not os.path.lexists(paths.key):
                os.replace(temporary, paths.key)
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass  # renamed into place

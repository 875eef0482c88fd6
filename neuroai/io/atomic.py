"""Atomic writes: an interrupted job never leaves a file that looks complete.

Everything is first written to a hidden temporary file (or folder) in the same
folder as the target and then renamed onto it with :func:`os.replace`, which is
atomic on POSIX file systems. If the writer raises, the temporary is removed; if
the process is killed, only a hidden ``.<name>.tmp-*`` entry remains, which no
reader takes for the artifact.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

TMP_MARKER = ".tmp-"


def _suffixes(name: str) -> str:
    """Multi-part suffix of a file name (``.nii.gz``, ``.prov.json``, ``.npy``)."""
    suffixes = Path(name).suffixes
    # Keep only short alphabetic suffixes: "sub-01_run-1.5.npy" must not yield ".5.npy".
    kept: list[str] = []
    for suffix in reversed(suffixes):
        if (
            1 < len(suffix) <= 12
            and suffix[1:].replace("_", "").isalnum()
            and not suffix[1].isdigit()
        ):
            kept.insert(0, suffix)
        else:
            break
    return "".join(kept)


def temporary_sibling(path: str | os.PathLike) -> Path:
    """Return a fresh hidden path beside ``path`` with the same suffixes.

    The suffixes are kept so that libraries that choose a format by extension
    (nibabel, numpy) write the right one.
    """
    path = Path(path)
    suffix = _suffixes(path.name)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{stem}{TMP_MARKER}{token}{suffix}")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        The final location of the artifact. Its parent folder is created.
    directory : bool
        Yield a temporary *folder* (for multi-file artifacts such as zarr stores
        or checkpoint folders) instead of a file path.

    Examples
    --------
    >>> with atomic_path("out/fc.npy") as tmp:  # doctest: +SKIP
    ...     np.save(tmp, matrix)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"The writer for {final} did not create {tmp}.")
        if not directory:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        if directory and final.exists():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = temporary_sibling(final)
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file for writing; rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final location.
    mode : str
        ``"w"`` (text, UTF-8 unless ``encoding`` is given) or ``"wb"``.
    """
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open writes a new file; mode {mode!r} is not supported.")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary left by an interrupted atomic write."""
    name = Path(path).name
    return name.startswith(".") and TMP_MARKER in name


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporaries that interrupted writes left in ``folder``.

    Returns the removed paths. Only entries whose names carry the temporary
    marker are touched, and only those whose writing process is gone.
    """
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not is_temporary(entry):
            continue
        pid_text = entry.name.split(TMP_MARKER, 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

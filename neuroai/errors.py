"""Exceptions raised by neuroai.

Every error says what is wrong, where (the file, the parameter, the key) and
what would be right, so that a user can fix the input without reading the code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NeuroaiError(Exception):
    """Base class of every error neuroai raises on purpose."""


class ConfigError(NeuroaiError, ValueError):
    """A workflow or stage configuration is invalid."""


class DataError(NeuroaiError, ValueError):
    """Input data are malformed: wrong shape, NaNs, missing metadata, corrupt file."""


class ArtifactError(NeuroaiError):
    """An artifact is missing, incomplete, or was made differently than asked."""


class ProvenanceError(ArtifactError):
    """An artifact's provenance record is missing or does not match the request."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``.

    Parameters
    ----------
    value : str
        What the user wrote.
    choices : iterable of str
        The valid spellings.
    """
    matches = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def check_option(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise :class:`ConfigError` when ``value`` is not one of ``allowed``.

    The message names the parameter, lists the allowed values and suggests the
    nearest one, as MNE does.
    """
    allowed = list(allowed)
    if value in allowed:
        return
    listed = ", ".join(repr(a) for a in allowed)
    raise ConfigError(
        f"Invalid value for the {name!r} parameter. Allowed values are {listed}, "
        f"but got {value!r} instead.{did_you_mean(str(value), map(str, allowed))}"
    )

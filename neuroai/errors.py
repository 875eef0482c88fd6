"""Exceptions raised by neuroai.

Every error says what is wrong, where (the file, the parameter, the key) and
what would be right, so that a user can fix the input without reading the code.

One rule decides the class, everywhere, whichever module raises:

- :class:`ConfigError`: a parameter or configuration value the user chose is wrong
  (an unknown option, a window of 0, a negative worker count, a filter that does
  not apply to the layout, a config key naming a column that does not exist). The
  fix is to change the call or the config file.
- :class:`DataError`: the contents of a file or array are wrong (a missing or
  malformed header, a 3D image where a 4D run is needed, NaNs, a series shorter
  than one window, one class only, an array of the wrong shape for the model).
  The fix is to change or leave out the data.
- :class:`ArtifactError` (and its :class:`ProvenanceError`): an artifact neuroai
  writes is missing, incomplete, or was made differently than asked.

:class:`ConfigError` and :class:`DataError` are both :class:`ValueError` (and
:class:`NeuroaiError`), so ``except ValueError`` catches either.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NeuroaiError(Exception):
    """Base class of every error neuroai raises on purpose."""


class ConfigError(NeuroaiError, ValueError):
    """A parameter or configuration value the user chose is invalid."""


class DataError(NeuroaiError, ValueError):
    """The contents of a file or array are wrong: shape, NaNs, missing metadata, corruption."""


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

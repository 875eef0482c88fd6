"""Patient identities across EEG datasets: patient namespaces.

A patient is a subject of a *patient namespace*: ``<namespace>/<subject>``. Datasets
that share a namespace share their subject identifiers, so one person seen through two
of them is one patient. The TUH corpora (TUAB, TUAR, TUSZ, TUSL, TUEV, TUEP) all name
patients by the same 8-letter id (``aaaaaaav`` in ``aaaaaaav_s004_t000.edf``), so a
dataset in the ``tuh`` layout read from disk shares the namespace ``tuh`` by default;
every other dataset (another layout, or a simulated demo cohort) is its own namespace,
named after the dataset. A dataset's ``patient_namespace`` (workflow config) overrides
the default: two BIDS cohorts of one site that number their participants alike can
declare one namespace, a private TUH copy with its own numbering can declare its own.

The namespace is written into the dataset's patch store (``store.json["patients"]``)
when the store is built, so the splits read it from the store, not from the config. A
store without the key (a dataset that is its own namespace, or a store written before
the key existed) is its own namespace, named after the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from neuroai.errors import ConfigError

#: Layouts whose datasets (read from disk) share one patient namespace by default.
SHARED_NAMESPACES = {"tuh": "tuh"}
#: The ``store.json`` key that holds a store's patient namespace.
HEADER_KEY = "patients"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_patient_namespace(name: str, *, where: str = "patient_namespace") -> str:
    """Return ``name`` when it can name a patient namespace, else raise.

    Raises
    ------
    ConfigError
        When ``name`` is not letters, digits, ``_``, ``-`` and ``.`` (it is the first part
        of ``<namespace>/<subject>``, so it can hold no ``/``).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"Invalid value for {where}: {name!r}. A patient namespace is letters, digits, "
            "'_', '-' and '.' (a dataset name, or 'tuh'), starting with a letter or digit."
        )
    return name


def default_patient_namespace(
    dataset: str, layout: str, *, patient_namespace: str | None = None, built: bool = False
) -> str:
    """The patient namespace of a dataset.

    Parameters
    ----------
    dataset : str
        The dataset's name.
    layout : str
        Its layout (``tuh``, ``bids_eeg``, ``eeg_files``).
    patient_namespace : str | None
        The namespace the configuration declares; it wins.
    built : bool
        The dataset is made by the workflow (a simulated demo cohort): its subjects are
        nobody else's, whatever its layout.

    Returns
    -------
    str
        ``patient_namespace`` when given; else ``tuh`` for a dataset in the ``tuh``
        layout read from disk (:data:`SHARED_NAMESPACES`); else ``dataset``.
    """
    if patient_namespace is not None:
        return check_patient_namespace(patient_namespace)
    if not built and layout in SHARED_NAMESPACES:
        return SHARED_NAMESPACES[layout]
    shared = {v: k for k, v in SHARED_NAMESPACES.items()}
    if dataset in shared:
        raise ConfigError(
            f"EEG dataset {dataset!r} ({layout} layout) would be its own patient namespace "
            f"{dataset!r}, which is the namespace the {shared[dataset]} corpora share: its "
            f"subjects would be taken for {shared[dataset].upper()} patients. Rename the dataset, "
            "or set its patient_namespace (the same name to join them on purpose)."
        )
    return dataset


def store_patient_namespace(header: Mapping, name: str) -> str:
    """The patient namespace of a patch store: its header's, else the store's ``name``."""
    namespace = header.get(HEADER_KEY)
    return name if namespace is None else check_patient_namespace(namespace, where=HEADER_KEY)


def patient_id(namespace: str, subject: str) -> str:
    """A patient's identity: ``<namespace>/<subject>``."""
    return f"{namespace}/{subject}"

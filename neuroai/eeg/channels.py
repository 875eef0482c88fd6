"""EEG channel names: from vendor spellings to standard 10-05 names.

Recordings name the same electrode many ways: ``EEG FP1-REF`` and ``EEG FP1-LE``
(TUH), ``FP1``, ``Fp1-LE``, ``Fp1.`` (EEGLAB exports), ``EEG T3-REF`` with the old
name of T7. :func:`standard_channel_name` strips the type prefix, the reference
suffix and stray punctuation, replaces the old 10-20 names (T3, T4, T5, T6 became
T7, T8, P7, P8) and returns the electrode's name as the 10-05 system spells it
(``Fp1``, ``AFz``, ``T7``), or ``None`` when the name is not a 10-05 electrode.
:func:`classify_channels` also recognises non-EEG channels (ECG, EOG, EMG,
photic, respiration, triggers ...) by name, so that readers that type every
channel as EEG (EDF) still drop them.

The 10-05 names are those of MNE's ``colin27_1005`` template (343 positions,
``standard_1005`` in MNE < 1.12), which also holds A1, A2, M1 and M2.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

#: Old 10-20 names and the 10-10/10-05 names that replaced them.
OLD_TO_NEW = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
#: Reference suffixes removed from referential channel names (``FP1-REF``, ``C3-LE``).
REFERENCE_SUFFIXES = ("REF", "LE", "AR", "AVG", "AV", "CAR", "A1A2", "LM", "M1M2", "A1", "A2")
_PREFIX = re.compile(r"^EEG[:\s_\-]+", re.IGNORECASE)
#: Non-EEG channel kinds, recognised by name after prefix and suffix removal.
_NON_EEG = (
    ("ecg", re.compile(r"^(EKG|ECG)\w*$", re.IGNORECASE)),
    ("eog", re.compile(r"^(EOG\w*|LOC|ROC|HEOG\w*|VEOG\w*|IO\d?)$", re.IGNORECASE)),
    ("emg", re.compile(r"^(EMG|CHIN)\w*$", re.IGNORECASE)),
    ("resp", re.compile(r"^(RESP|AIRFLOW|THOR|ABD)\w*$", re.IGNORECASE)),
    ("bio", re.compile(r"^(SPO2|SAO2|PULSE|PLETH|HR|GSR|TEMP|BP)\w*$", re.IGNORECASE)),
    (
        "stim",
        re.compile(
            r"^(PHOTIC|PHOTO|IBI|BURSTS?|SUPPR|TRIG\w*|STI\w*|STATUS|EVENT\w*|MARKER\w*|DC\d*|"
            r"EDF ANNOTATIONS|ANNOTATIONS?)$",
            re.IGNORECASE,
        ),
    ),
)


@functools.cache
def _template():
    """MNE's 10-05 template montage (colin27_1005, or standard_1005 before MNE 1.12)."""
    import mne

    names = mne.channels.get_builtin_montages()
    kind = "colin27_1005" if "colin27_1005" in names else "standard_1005"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return mne.channels.make_standard_montage(kind)


@functools.cache
def standard_names() -> dict[str, str]:
    """Upper-case spelling -> 10-05 spelling of every electrode of the template.

    The old names T3, T4, T5, T6 are not keys: they map to T7, T8, P7, P8.
    """
    return {name.upper(): name for name in _template().ch_names if name.upper() not in OLD_TO_NEW}


def electrode_positions(names: Sequence[str]):
    """A :class:`mne.channels.DigMontage` with the template positions of ``names``.

    Parameters
    ----------
    names : sequence of str
        10-05 names (as :func:`standard_channel_name` returns them).
    """
    import mne

    template = _template()
    positions = template.get_positions()
    chosen = {name: positions["ch_pos"][name] for name in names if name in positions["ch_pos"]}
    return mne.channels.make_dig_montage(
        ch_pos=chosen,
        nasion=positions["nasion"],
        lpa=positions["lpa"],
        rpa=positions["rpa"],
        coord_frame="head",
    )


def _strip(name: str) -> str:
    """Remove the type prefix, reference suffix, dots and spaces of a channel name."""
    core = _PREFIX.sub("", name.strip()).strip().rstrip(".").strip()
    if "-" in core:
        head, _, tail = core.rpartition("-")
        if tail.upper() in REFERENCE_SUFFIXES and head:
            core = head.strip()
    return core.replace(" ", "")


def standard_channel_name(name: str) -> str | None:
    """The 10-05 name of a referential EEG channel name, or ``None``.

    Parameters
    ----------
    name : str
        A channel name as a file gives it.

    Returns
    -------
    str | None
        The electrode's 10-05 spelling, or ``None`` for names that are not an
        electrode of the 10-05 system (bipolar derivations, ECG, ``E17``).

    Examples
    --------
    >>> standard_channel_name("EEG FP1-REF"), standard_channel_name("EEG T3-LE")
    ('Fp1', 'T7')
    >>> standard_channel_name("Fc5."), standard_channel_name("EEG EKG1-REF") is None
    ('FC5', True)
    """
    core = _strip(name).upper()
    core = OLD_TO_NEW.get(core, core)
    return standard_names().get(core)


def standard_bipolar_name(name: str) -> str | None:
    """The standard spelling of a bipolar derivation (``"FP1-F7"`` -> ``"Fp1-F7"``).

    Returns ``None`` unless both sides are 10-05 electrodes.
    """
    core = _PREFIX.sub("", name.strip()).strip()
    if core.count("-") != 1:
        return None
    anode, cathode = (standard_channel_name(part) for part in core.split("-"))
    if anode is None or cathode is None:
        return None
    return f"{anode}-{cathode}"


def non_eeg_kind(name: str) -> str | None:
    """The kind (``ecg``, ``eog``, ``emg``, ``resp``, ``bio``, ``stim``) of a non-EEG name."""
    core = _strip(name)
    for kind, pattern in _NON_EEG:
        if pattern.match(core):
            return kind
    return None


@dataclass(frozen=True)
class ChannelMatch:
    """How one channel of a recording was recognised.

    Attributes
    ----------
    original : str
        The name in the file.
    standard : str | None
        Its 10-05 name, when it is a 10-05 electrode.
    kind : str
        ``"eeg"`` (a 10-05 electrode), ``"eeg_other"`` (typed EEG by the file,
        with a name outside the 10-05 system, such as ``E17`` of a 256-channel
        net), or the non-EEG kind (``ecg``, ``eog``, ``emg``, ``resp``, ``bio``,
        ``stim``, ``other``).
    """

    original: str
    standard: str | None
    kind: str


def classify_channels(names: Sequence[str], types: Sequence[str]) -> list[ChannelMatch]:
    """Recognise each channel of a recording.

    Parameters
    ----------
    names : sequence of str
        Channel names as read.
    types : sequence of str
        MNE channel types (``"eeg"``, ``"ecg"``, ``"stim"`` ...), one per name.
        EDF readers type every channel as EEG, so names decide first.

    Returns
    -------
    list of ChannelMatch
    """
    matches = []
    for name, ch_type in zip(names, types, strict=True):
        kind = non_eeg_kind(name)
        standard = None if kind else standard_channel_name(name)
        if standard is not None and ch_type in ("eeg", "misc", "bio"):
            matches.append(ChannelMatch(name, standard, "eeg"))
        elif kind is not None:
            matches.append(ChannelMatch(name, None, kind))
        elif ch_type == "eeg":
            matches.append(ChannelMatch(name, None, "eeg_other"))
        else:
            matches.append(ChannelMatch(name, None, ch_type if ch_type else "other"))
    return matches

"""Target montages that recordings are standardised to.

``10-20_19``
    The 19 scalp electrodes of the international 10-20 system, referential
    (as recorded, or average-referenced on request).
``10-20_21``
    The same plus the ear electrodes A1 and A2 (the TUH EEG referential set).
``tcp_22``
    The temporal central parasagittal (TCP) bipolar montage of the TUH EEG
    corpus: 22 derivations of the 21 electrodes above, in TUH order.

Names follow the 10-05 spelling (T7, T8, P7, P8 for the old T3, T4, T5, T6);
bipolar channels are named ``anode-cathode`` (``Fp1-F7``).
"""

from __future__ import annotations

from neuroai.errors import check_option

ELECTRODES_1020 = (
    "Fp1",
    "Fp2",
    "F7",
    "F3",
    "Fz",
    "F4",
    "F8",
    "T7",
    "C3",
    "Cz",
    "C4",
    "T8",
    "P7",
    "P3",
    "Pz",
    "P4",
    "P8",
    "O1",
    "O2",
)
EAR_ELECTRODES = ("A1", "A2")
#: TUH's TCP montage, in the order of the TUH EEG documentation (old names in comments).
TCP_PAIRS = (
    ("Fp1", "F7"),
    ("F7", "T7"),  # F7-T3
    ("T7", "P7"),  # T3-T5
    ("P7", "O1"),  # T5-O1
    ("Fp2", "F8"),
    ("F8", "T8"),  # F8-T4
    ("T8", "P8"),  # T4-T6
    ("P8", "O2"),  # T6-O2
    ("A1", "T7"),  # A1-T3
    ("T7", "C3"),  # T3-C3
    ("C3", "Cz"),
    ("Cz", "C4"),
    ("C4", "T8"),  # C4-T4
    ("T8", "A2"),  # T4-A2
    ("Fp1", "F3"),
    ("F3", "C3"),
    ("C3", "P3"),
    ("P3", "O1"),
    ("Fp2", "F4"),
    ("F4", "C4"),
    ("C4", "P4"),
    ("P4", "O2"),
)
MONTAGES = ("10-20_19", "10-20_21", "tcp_22")


def montage_electrodes(montage: str) -> tuple[str, ...]:
    """The referential electrodes a montage needs, in a fixed order."""
    check_option("montage", montage, MONTAGES)
    if montage == "10-20_19":
        return ELECTRODES_1020
    return ELECTRODES_1020 + EAR_ELECTRODES


def bipolar_pairs(montage: str) -> tuple[tuple[str, str], ...] | None:
    """``(anode, cathode)`` pairs of a bipolar montage; ``None`` for referential ones."""
    check_option("montage", montage, MONTAGES)
    return TCP_PAIRS if montage == "tcp_22" else None


def montage_channels(montage: str) -> tuple[str, ...]:
    """The channel names a standardised recording has, in order."""
    pairs = bipolar_pairs(montage)
    if pairs is None:
        return montage_electrodes(montage)
    return tuple(f"{a}-{c}" for a, c in pairs)

"""Channel standardisation: standard names, a target montage, missing channels.

:func:`standardize_channels` turns a recording with vendor channel names into
one with standard names:

- with ``montage=None`` it keeps every EEG channel, renamed to its 10-05 name
  where it has one (``EEG FP1-REF`` -> ``Fp1``), so 14-channel consumer headsets
  and 256-channel nets (``E1`` ... ``E256``, kept as they are) pass too;
- with a target montage (``10-20_19``, ``10-20_21``, ``tcp_22``, see
  :mod:`neuroai.eeg.montages`) it returns exactly the montage's channels, in
  order. Electrodes the recording lacks (or marks bad) are interpolated with
  spherical splines from the template positions of all its 10-05 electrodes
  (MNE's ``interpolate_bads``), or are an error, as configured. Bipolar channels
  are differences of the (interpolated) referential electrodes.

Non-EEG channels (ECG, EOG, photic, triggers ...) are dropped. Every decision is
logged and returned in a :class:`ChannelReport`, which stages store in the
artifact's provenance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from neuroai._logging import get_logger
from neuroai.eeg.channels import classify_channels, electrode_positions
from neuroai.eeg.montages import bipolar_pairs, montage_channels, montage_electrodes
from neuroai.errors import DataError, check_option

logger = get_logger(__name__)

MISSING_POLICIES = ("interpolate", "error")
REFERENCES = (None, "average")
#: Fewer good electrodes than this make spherical-spline interpolation meaningless.
MIN_GOOD_FOR_INTERPOLATION = 8


@dataclass
class ChannelReport:
    """What :func:`standardize_channels` did to one recording.

    Attributes
    ----------
    source : str
        The file (or ``"<memory>"``).
    montage : str | None
        The target montage.
    channels : list of str
        Channel names of the result, in order.
    found : list of str
        10-05 electrodes the recording has (good or marked bad).
    sources : dict
        Name after renaming (10-05 where there is one) -> the channel it was read
        from, for every good EEG channel kept before any montage derivation.
    renamed : dict
        Original name -> 10-05 name, where they differ.
    dropped : dict
        Original name -> why it was dropped (``"ecg"``, ``"not in montage"`` ...).
    interpolated : list of str
        Electrodes that were missing (or marked bad) and were interpolated.
    reference : str
        ``"as recorded"``, ``"average"`` or ``"bipolar"``.
    """

    source: str
    montage: str | None
    channels: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    interpolated: list[str] = field(default_factory=list)
    reference: str = "as recorded"

    def to_dict(self) -> dict:
        return asdict(self)


def _source(raw) -> str:
    names = getattr(raw, "filenames", None) or []
    return str(names[0]) if names and names[0] is not None else "<memory>"


def standardize_channels(
    raw,
    montage: str | None = None,
    *,
    missing: str = "interpolate",
    max_interpolated: float = 0.25,
    reference: str | None = None,
    return_report: bool = False,
    verbose: bool | str | int | None = None,
):
    """Standard channel names and, optionally, a target montage.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        A recording as :func:`neuroai.eeg.read_raw` returns it (not modified).
    montage : {None, "10-20_19", "10-20_21", "tcp_22"}
        Target montage; ``None`` keeps all EEG channels under standard names.
    missing : {"interpolate", "error"}
        What to do with montage electrodes the recording lacks or marks bad.
    max_interpolated : float
        Largest fraction of the montage's electrodes that may be interpolated;
        more is an error even with ``missing="interpolate"``.
    reference : {None, "average"}
        Re-reference referential EEG to the average of its electrodes
        (ignored for bipolar montages).
    return_report : bool
        Also return the :class:`ChannelReport`.
    verbose : bool | str | int | None
        MNE's ``verbose`` for the steps that change the signals (interpolation,
        re-referencing); ``None``: MNE's own level. Renaming and channel types
        are silent bookkeeping.

    Returns
    -------
    mne.io.BaseRaw
        A new Raw, data loaded, EEG channels only, with standard names and the
        template electrode positions (referential montages).
    ChannelReport
        Only with ``return_report=True``.

    Raises
    ------
    DataError
        Naming the file: no EEG channels; two channels that are the same
        electrode (``T3`` and ``T7``); missing electrodes with
        ``missing="error"``, or too many to interpolate.
    """
    check_option("missing", missing, MISSING_POLICIES)
    check_option("reference", reference, REFERENCES)
    if montage is not None:
        montage_electrodes(montage)  # validates the name
    source = _source(raw)
    report = ChannelReport(source=source, montage=montage)
    matches = classify_channels(raw.ch_names, raw.get_channel_types())
    by_standard: dict[str, str] = {}
    keep: list[str] = []
    rename: dict[str, str] = {}
    for match in matches:
        if match.kind == "eeg":
            if match.standard in by_standard:
                raise DataError(
                    f"{source}: channels {by_standard[match.standard]!r} and {match.original!r} "
                    f"are both electrode {match.standard} (old and new 10-20 names, or a "
                    "duplicated channel). Keep one of them (raw.drop_channels) before "
                    "standardising."
                )
            by_standard[match.standard] = match.original
            keep.append(match.original)
            rename[match.original] = match.standard
        elif match.kind == "eeg_other" and montage is None:
            keep.append(match.original)
        else:
            reason = "not a 10-05 electrode" if match.kind == "eeg_other" else match.kind
            report.dropped[match.original] = reason
    if not keep:
        found = ", ".join(raw.ch_names[:12]) + (" ..." if len(raw.ch_names) > 12 else "")
        if any(match.kind == "eeg_other" for match in matches):
            raise DataError(
                f"{source} has EEG channels ({found}) but none with a 10-05 electrode name, so "
                f"they cannot be mapped to montage {montage!r}. Use montage=None to keep them "
                "as they are, or rename them to 10-05 names."
            )
        raise DataError(
            f"{source} has no EEG channels: none of its {len(raw.ch_names)} channels ({found}) "
            "is a 10-05 electrode name or an EEG-typed channel. Check that this is an EEG "
            "recording, or rename its channels to standard names."
        )
    out = raw.copy().pick(keep).load_data(verbose="error")
    out.rename_channels(rename, verbose="error")
    out.set_channel_types(dict.fromkeys(out.ch_names, "eeg"), verbose="error")
    report.found = list(rename.values())
    report.sources = {rename.get(k, k): k for k in keep if k not in raw.info["bads"]}
    report.renamed = {k: v for k, v in rename.items() if k != v}
    bads = [rename.get(name, name) for name in raw.info["bads"] if name in keep]
    if montage is None:
        standard = [rename[name] for name in keep if name in rename]
        if standard:
            out.set_montage(electrode_positions(standard), on_missing="ignore", verbose="error")
        out.info["bads"] = bads
        if reference == "average":
            out.set_eeg_reference("average", verbose=verbose)
            report.reference = "average"
        report.channels = list(out.ch_names)
        _log(report)
        return (out, report) if return_report else out
    out = _to_montage(out, montage, bads, missing, max_interpolated, report, verbose)
    if bipolar_pairs(montage) is None and reference == "average":
        out.set_eeg_reference("average", verbose=verbose)
        report.reference = "average"
    report.channels = list(out.ch_names)
    _log(report)
    return (out, report) if return_report else out


def _to_montage(raw, montage, bads, missing, max_interpolated, report, verbose):
    import mne

    electrodes = list(montage_electrodes(montage))
    present = [name for name in electrodes if name in raw.ch_names and name not in bads]
    absent = [name for name in electrodes if name not in present]
    if absent:
        if missing == "error":
            raise DataError(
                f"{report.source} lacks electrodes {absent} of montage {montage!r} (absent or "
                f"marked bad), and missing channels are configured as an error. It has "
                f"{sorted(raw.ch_names)}. Set missing_channels to 'interpolate', choose "
                "another montage, or exclude the recording."
            )
        if len(absent) > max_interpolated * len(electrodes):
            raise DataError(
                f"{report.source} lacks {len(absent)} of the {len(electrodes)} electrodes of "
                f"montage {montage!r} ({absent}); at most {max_interpolated:.0%} may be "
                "interpolated (max_interpolated). Exclude the recording or use montage=None."
            )
        good = [name for name in raw.ch_names if name not in bads]
        if len(good) < MIN_GOOD_FOR_INTERPOLATION:
            raise DataError(
                f"{report.source} has {len(good)} good 10-05 electrodes; interpolating "
                f"{absent} needs at least {MIN_GOOD_FOR_INTERPOLATION}."
            )
        new = [name for name in absent if name not in raw.ch_names]
        if new:
            info = mne.create_info(new, raw.info["sfreq"], "eeg")
            filler = mne.io.RawArray(
                np.zeros((len(new), raw.n_times)), info, first_samp=raw.first_samp, verbose="error"
            )
            filler.set_meas_date(raw.info["meas_date"])
            raw.add_channels([filler], force_update_info=True)
        drop = [name for name in raw.ch_names if name in bads and name not in electrodes]
        raw.drop_channels(drop)
        raw.set_montage(electrode_positions(raw.ch_names), verbose="error")
        raw.info["bads"] = list(absent)
        raw.interpolate_bads(reset_bads=True, origin="auto", verbose=verbose)
        report.interpolated = list(absent)
    for name in raw.ch_names:
        if name not in electrodes:
            report.dropped[name] = "not in montage"
    raw.pick(electrodes)
    pairs = bipolar_pairs(montage)
    if pairs is None:
        return raw
    bipolar = mne.set_bipolar_reference(
        raw,
        anode=[a for a, _ in pairs],
        cathode=[c for _, c in pairs],
        ch_name=list(montage_channels(montage)),
        drop_refs=True,
        copy=True,
        verbose=verbose,
    )
    bipolar.pick(list(montage_channels(montage)))
    report.reference = "bipolar"
    return bipolar


def _log(report: ChannelReport) -> None:
    logger.info(
        "%s: %d channels (%s)%s%s",
        report.source,
        len(report.channels),
        report.montage or "10-05 names",
        f", interpolated {report.interpolated}" if report.interpolated else "",
        f", dropped {sorted(report.dropped)}" if report.dropped else "",
    )
    if report.interpolated:
        logger.info(
            "%s: interpolated missing electrodes %s (spherical splines)",
            report.source,
            report.interpolated,
        )

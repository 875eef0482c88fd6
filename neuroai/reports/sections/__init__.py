"""Report sections, one module per domain.

Each section is named in :data:`REGISTRY` by the key the workflow uses for it
(``"static_fc"``, ...) and rendered by a function that takes the section's
artifact paths (summaries, metrics, figures' data) and returns
:class:`~neuroai.reports.html.Section` objects. Renderers read artifacts only;
they never recompute features or retrain models.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path

from neuroai.errors import check_option
from neuroai.reports.html import Section

#: Section name -> "module:function" of its renderer.
REGISTRY = {
    "static_fc": "neuroai.reports.sections.fmri:render_static_fc",
    "fmri_qc": "neuroai.reports.sections.fmri:render_fmri_qc",
    "dynamic_fc": "neuroai.reports.sections.fmri:render_dynamic_fc",
    "eeg": "neuroai.reports.sections.eeg:render_eeg",
    "eegformer": "neuroai.reports.sections.eegformer:render_eegformer",
    "segmentation": "neuroai.reports.sections.segmentation:render_segmentation",
    "inference": "neuroai.reports.sections.inference:render_inference",
    "tokens": "neuroai.reports.sections.tokens:render_tokens",
    "dfc_gnn": "neuroai.reports.sections.dfc_gnn:render_dfc_gnn",
    "tablet": "neuroai.reports.sections.tablet:render_tablet",
    "failures": "neuroai.reports.sections.failures:render_failures",
}


def render(name: str, paths: Sequence[str | os.PathLike]) -> list[Section]:
    """Render the report section ``name`` from its artifacts."""
    check_option("report section", name, REGISTRY)
    module_name, function = REGISTRY[name].split(":")
    renderer = getattr(importlib.import_module(module_name), function)
    return list(renderer([Path(p) for p in paths]))


__all__ = ["REGISTRY", "render"]

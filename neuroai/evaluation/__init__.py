"""Evaluation: splits, metrics with bootstrap confidence intervals, metrics.json."""

from neuroai.evaluation.auroc import auroc
from neuroai.evaluation.bootstrap import bootstrap_ci, bootstrap_metric, paired_bootstrap
from neuroai.evaluation.embeddings import embedding_matrix, read_embeddings
from neuroai.evaluation.fingerprint import (
    identification,
    profile_similarity,
    scan_halves,
    upper_triangle,
)
from neuroai.evaluation.label_efficiency import (
    cross_validated_predictions,
    label_efficiency_curves,
    label_subset,
)
from neuroai.evaluation.linear import linear_readout
from neuroai.evaluation.metrics import prediction_metrics, summarize_cases
from neuroai.evaluation.results import pairwise_comparisons, summarize_per_case
from neuroai.evaluation.segmentation import CasePrediction, predict_case, segmentation_metrics
from neuroai.evaluation.splits import (
    Split,
    fixed_split,
    kfold_splits,
    make_splits,
    splits_table,
    stratified_splits,
)
from neuroai.evaluation.subject_level import (
    average_by_subject,
    predict_windows,
    subject_metrics,
)

__all__ = [
    "CasePrediction",
    "Split",
    "auroc",
    "average_by_subject",
    "bootstrap_ci",
    "bootstrap_metric",
    "cross_validated_predictions",
    "embedding_matrix",
    "fixed_split",
    "identification",
    "kfold_splits",
    "label_efficiency_curves",
    "label_subset",
    "linear_readout",
    "make_splits",
    "paired_bootstrap",
    "pairwise_comparisons",
    "predict_case",
    "predict_windows",
    "prediction_metrics",
    "profile_similarity",
    "read_embeddings",
    "scan_halves",
    "segmentation_metrics",
    "splits_table",
    "stratified_splits",
    "summarize_cases",
    "subject_metrics",
    "summarize_per_case",
    "upper_triangle",
]

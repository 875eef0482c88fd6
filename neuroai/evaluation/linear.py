"""Linear read-outs of fixed features: the static-FC baseline and frozen-embedding probes.

Features are standardised on the training subjects, then an L2-regularised logistic
regression (classification) or ridge regression (regression) is fitted with scikit-learn.
The regularisation is fixed (``C`` / ``alpha`` = 1 by default) rather than tuned by an
inner cross-validation: with the few labelled subjects of a label-efficiency curve (two
at 10% of a small cohort) an inner split is impossible, and a fixed value treats every
fraction alike. On standardised features with far more features than subjects (4,371
edges of a 94-region FC), the L2 penalty is what makes the fit well posed.
"""

from __future__ import annotations

import numpy as np

from neuroai.errors import DataError, check_option


def linear_readout(
    train_features: np.ndarray,
    train_targets: np.ndarray,
    test_features: np.ndarray,
    *,
    task: str = "classification",
    n_classes: int | None = None,
    C: float = 1.0,
    alpha: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Fit a linear model on the training subjects and score the test subjects.

    Parameters
    ----------
    train_features : ndarray, shape (n_train, n_features)
        E.g. static-FC upper triangles or frozen subject embeddings.
    train_targets : ndarray, shape (n_train,)
        Class indices (0..n_classes-1) or values.
    test_features : ndarray, shape (n_test, n_features)
    task : {"classification", "regression"}
    n_classes : int | None
        Number of classes (columns of the result); the classes in ``train_targets`` by
        default. Classes absent from the training subjects get probability 0.
    C : float
        Inverse L2 strength of the logistic regression.
    alpha : float
        L2 strength of the ridge regression.
    seed : int
        Random state of the solver.

    Returns
    -------
    ndarray
        ``(n_test, n_classes)`` class probabilities, or ``(n_test,)`` predicted values.
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_option("task", task, ("classification", "regression"))
    train_features = np.asarray(train_features, dtype=np.float64)
    test_features = np.asarray(test_features, dtype=np.float64)
    train_targets = np.asarray(train_targets)
    if train_features.ndim != 2 or train_features.shape[0] != train_targets.shape[0]:
        raise DataError(
            f"linear_readout: {train_features.shape} training features for "
            f"{train_targets.shape[0]} targets."
        )
    if test_features.ndim != 2 or test_features.shape[1] != train_features.shape[1]:
        raise DataError(
            f"linear_readout: test features {test_features.shape} do not match the training "
            f"features {train_features.shape}."
        )
    if task == "regression":
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
        model.fit(train_features, train_targets.astype(float))
        return model.predict(test_features)
    targets = train_targets.astype(int)
    k = int(n_classes if n_classes is not None else targets.max() + 1)
    present = np.unique(targets)
    probabilities = np.zeros((test_features.shape[0], k))
    if present.size == 1:
        probabilities[:, present[0]] = 1.0
        return probabilities
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=5000, random_state=seed)
    )
    model.fit(train_features, targets)
    probabilities[:, model.classes_] = model.predict_proba(test_features)
    return probabilities

"""One feature frame for every path that feeds a batch model.

A serving request (the dict :meth:`UseCase.features_of` builds), a row of the batch feature SQL
(:func:`rtml.features.feature_sql`) and a training table all go through :func:`feature_frame`,
so the columns, their order and their types are the ones the model was trained on, by
construction. Categoricals stay strings: CatBoost treats them as categorical features and the
KMeans pipeline one-hot encodes them itself; nobody invents integer codes that could differ
between training and serving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rtml.features import FeatureValue
from rtml.usecases.base import UseCase


def frame_of(spec: UseCase, frame: pd.DataFrame) -> pd.DataFrame:
    """The spec's feature columns of ``frame``, in the spec's order, with the trained dtypes.

    Numeric features are float64 (a missing one is NaN, which CatBoost handles); categoricals are
    strings and must be present (CatBoost refuses a missing categorical, and "" would be a silent
    new category). Extra columns (ids, targets, truth) are dropped.
    """
    missing = [name for name in spec.feature_names if name not in frame.columns]
    if missing:
        raise ValueError(f"{spec.name}: missing feature(s) {', '.join(missing)}")
    out = pd.DataFrame(index=frame.index)
    categorical = set(spec.categorical_names)
    for name in spec.feature_names:
        column = frame[name]
        if name not in categorical:
            out[name] = pd.to_numeric(column, errors="raise").astype("float64")
        else:
            if column.isna().any():
                raise ValueError(f"{spec.name}: categorical feature {name} is missing")
            out[name] = column.astype(str)
    return out


def feature_frame(
    spec: UseCase, rows: Sequence[Mapping[str, FeatureValue]] | pd.DataFrame
) -> pd.DataFrame:
    """Feature dicts (from ``spec.features_of(event)`` or rows of the batch feature SQL) as the
    frame the batch models were trained on: ``spec.feature_names`` in order, float64 numerics,
    string categoricals."""
    if isinstance(rows, pd.DataFrame):
        return frame_of(spec, rows)
    names = spec.feature_names
    try:
        data = {name: [row[name] for row in rows] for name in names}
    except KeyError as exc:
        raise ValueError(f"{spec.name}: missing feature {exc.args[0]}") from None
    return frame_of(spec, pd.DataFrame(data, columns=names))


def reference_space(spec: UseCase, frame: pd.DataFrame) -> np.ndarray:
    """A fixed space to judge points in: numerics standardized, categoricals one-hot.

    Silhouette depends on the space it is measured in; judging each KMeans in its own (scaled or
    not) space would let a model win by its choice of scaling. Every clustering of the same rows
    is scored in this one space, fitted on those rows, so scores are comparable.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    space = ColumnTransformer(
        [
            ("num", StandardScaler(), spec.numeric_names),
            ("cat", OneHotEncoder(sparse_output=False), spec.categorical_names),
        ]
    )
    return np.asarray(space.fit_transform(frame_of(spec, frame)))

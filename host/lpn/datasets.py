"""Data for `lpn train` and `lpn convert`: CSV files, and sklearn's digits.

A CSV file has a header row naming its columns and one sample per row. Every
feature is a finite number; the label column, when there is one, holds integer
class labels (output indices). Any problem is reported with the file, the line and
the column, and nothing is returned for a file with a problem.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A data file is missing, empty or malformed."""


def load_csv(path: str | os.PathLike, label: str | None = None
             ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Read a CSV file: (X float64 (n, features), y int64 (n,) or None, feature names)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _parse(csv.reader(handle), str(path), label)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV: {exc}") from exc


def _parse(reader, name: str, label: str | None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise DatasetError(f"{name}: empty file (expected a header row naming the columns)")
    header_line = reader.line_num
    columns = [c.strip() for c in header]
    where = f"{name}, line {header_line}"
    for i, c in enumerate(columns):
        if not c:
            raise DatasetError(f"{where}: column {i + 1} has no name")
        if columns.index(c) != i:
            raise DatasetError(f"{where}: column name {c!r} appears twice")
    label_index = None
    if label is not None:
        if label not in columns:
            raise DatasetError(f"{where}: no label column {label!r} (columns: {', '.join(columns)})")
        label_index = columns.index(label)
    feature_index = [i for i in range(len(columns)) if i != label_index]
    if not feature_index:
        raise DatasetError(f"{where}: no feature columns besides the label {label!r}")

    rows: list[list[float]] = []
    labels: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines separate nothing in a CSV; skip them
        where = f"{name}, line {reader.line_num}"
        if len(row) != len(columns):
            raise DatasetError(f"{where}: {len(row)} values, the header has {len(columns)} columns")
        values = [_number(row[i], where, i, columns[i]) for i in range(len(columns))]
        rows.append([values[i] for i in feature_index])
        if label_index is not None:
            labels.append(_class_label(values[label_index], row[label_index], where, label_index, label))
    if not rows:
        raise DatasetError(f"{name}: no data rows after the header")
    X = np.array(rows, dtype=np.float64)
    y = np.array(labels, dtype=np.int64) if label_index is not None else None
    return X, y, [columns[i] for i in feature_index]


def _column(index: int, name: str) -> str:
    return f"column {index + 1} ({name!r})"


def _number(cell: str, where: str, index: int, name: str) -> float:
    text = cell.strip()
    if not text:
        raise DatasetError(f"{where}, {_column(index, name)}: empty value")
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{where}, {_column(index, name)}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DatasetError(f"{where}, {_column(index, name)}: {text!r} is not a finite number")
    return value


def _class_label(value: float, cell: str, where: str, index: int, name: str) -> int:
    if not value.is_integer() or value < 0:
        raise DatasetError(f"{where}, {_column(index, name)}: {cell.strip()!r} is not a class "
                           "label (a non-negative integer)")
    return int(value)


def write_csv(path: str | os.PathLike, X, y=None, label: str = "label",
              feature_names: list[str] | None = None) -> None:
    """Write samples (and labels, as the last column) in the format `load_csv` reads."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (samples, features), got shape {X.shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} feature names for {X.shape[1]} features")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"y must hold one label per sample ({len(X)}), got shape {y.shape}")
        if label in names:
            raise ValueError(f"label column {label!r} clashes with a feature name")
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(names + ([label] if y is not None else []))
        for i, row in enumerate(X):
            # repr() of a float is the shortest text that reads back to the same value.
            cells = [repr(float(v)) for v in row]
            if y is not None:
                cells.append(str(y[i].item()))
            out.writerow(cells)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits: X (1797, 64) scaled to [0, 1], y (1797,) in 0..9."""
    from sklearn.datasets import load_digits
    data = load_digits()
    return data.data.astype(np.float64) / 16.0, data.target.astype(np.int64)

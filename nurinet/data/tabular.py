"""Tables: CSV files read into arrays, and pandas objects turned into arrays.

:func:`load_csv` needs only the standard library's ``csv`` module and NumPy. :func:`to_array`
accepts a pandas DataFrame or Series wherever nurinet takes arrays (``TensorDataset``,
``Model.fit``); pandas itself is never imported here, the object's own ``to_numpy`` does the work.

Example:
    >>> x, y = load_csv("houses.csv", target="price")
    >>> model.fit(x, y)                          # or, with pandas: model.fit(df[features], df["price"])
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

Column = str | int


def _is_pandas(x: Any) -> bool:
    """Whether ``x`` looks like a pandas DataFrame or Series (duck-typed: pandas is not imported)."""
    return hasattr(x, "to_numpy") and not isinstance(x, np.ndarray)


def to_array(x: Any) -> Any:
    """``x`` as an array when it is a pandas DataFrame or Series; anything else unchanged.

    A DataFrame becomes its ``to_numpy()`` (rows are samples, columns features) and keeps its
    dtype, as a NumPy array would: float64 columns stay float64, a mix of int and float columns
    becomes float64. Nullable columns with missing values (``pd.NA``) become NaN.

    Args:
        x: Data of any kind.

    Returns:
        A NumPy array for pandas objects, else ``x`` itself.

    Raises:
        ValueError: If a column holds values that are not numbers (strings, objects); encode
            them first (``df["c"].astype("category").cat.codes``) or drop the column.
    """
    if not _is_pandas(x):
        return x
    array = x.to_numpy()
    if array.dtype != object:
        return array
    try:  # nullable or mixed columns come back as objects; numbers among them convert cleanly
        return x.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise ValueError(_non_numeric_message(x)) from err


def _non_numeric_message(x: Any) -> str:
    if hasattr(x, "columns"):
        bad = [str(c) for c, kind in x.dtypes.items() if not _numeric_kind(kind)]
        where = f"the columns {bad} hold" if bad else "a column holds"
    else:
        where = f"the Series {x.name!r} holds" if getattr(x, "name", None) is not None else "the Series holds"
    return (f"{where} values that are not numbers; nurinet needs numeric data: encode them first "
            "(e.g. df[col].astype('category').cat.codes) or drop them")


def _numeric_kind(dtype: Any) -> bool:
    try:
        return np.dtype(dtype).kind in "biuf"
    except TypeError:  # a pandas extension dtype (Int64, Float64, boolean, category, string)
        return getattr(dtype, "_is_numeric", False)


def load_csv(
    path: str | os.PathLike,
    target: Column | None = -1,
    *,
    features: Sequence[Column] | None = None,
    header: bool = True,
    delimiter: str = ",",
    dtype: Any = np.float32,
    target_dtype: Any = None,
    target_classes: Sequence[str] | None = None,
    missing: float | None = None,
    encoding: str = "utf-8",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a CSV file of numbers into a features array and a target array.

    Args:
        path: The CSV file.
        target: The target column: its name (with a header) or position (negative counts from
            the end; -1, the last column, by default); None for no target.
        features: The feature columns, names or positions, in the order wanted; all but the
            target by default.
        header: The first row holds the column names.
        delimiter: The field separator.
        dtype: The features' dtype.
        target_dtype: The target's dtype: by default int64 when every target value is a whole
            number (class labels), else ``dtype``.
        target_classes: Class names: each target value is replaced by its position in this list
            (for a text label column such as ``"setosa"``), giving int64 labels.
        missing: The value of empty cells (e.g. ``float("nan")``); by default an empty cell is
            an error.
        encoding: The file's text encoding.

    Returns:
        ``(x, y)``: ``x`` of shape ``(rows, features)``, ``y`` of shape ``(rows,)`` (None when
        ``target`` is None).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        KeyError: If ``target`` or a feature column is not in the file.
        ValueError: If the file is empty, a row has the wrong number of fields, a value is not
            a number (or not one of ``target_classes``), or a cell is empty without ``missing``.

    Example:
        >>> x, y = load_csv("iris.csv", target="species", target_classes=["setosa", "versicolor", "virginica"])
    """
    names, rows, first_line = _read_rows(path, header, delimiter, encoding)
    target_at = None if target is None else _column_index(target, names, header, "target")
    chosen = [c for c in range(len(names)) if c != target_at] if features is None \
        else [_column_index(f, names, header, "features") for f in features]
    x = _numeric_columns(rows, chosen, names, first_line, missing, dtype)
    if target_at is None:
        return x, None
    if target_classes is not None:
        return x, _class_column(rows, target_at, names[target_at], first_line, list(target_classes))
    y = _numeric_columns(rows, [target_at], names, first_line, missing, np.float64)[:, 0]
    if target_dtype is None:
        whole = np.isfinite(y).all() and (y == np.round(y)).all()
        target_dtype = np.int64 if whole else dtype
    return x, y.astype(target_dtype)


def _read_rows(path: str | os.PathLike, header: bool, delimiter: str,
               encoding: str) -> tuple[list[str], list[list[str]], int]:
    """The column names, the data rows (blank lines skipped) and the file line of the first row."""
    with open(path, newline="", encoding=encoding) as f:
        rows = [row for row in csv.reader(f, delimiter=delimiter) if row and any(cell.strip() for cell in row)]
    if not rows or (header and len(rows) == 1):
        raise ValueError(f"load_csv: {os.fspath(path)!r} has no data rows")
    width = len(rows[0])
    names = [cell.strip() for cell in rows[0]] if header else [str(i) for i in range(width)]
    data = rows[1:] if header else rows
    first_line = 2 if header else 1
    for r, row in enumerate(data):
        if len(row) != width:
            raise ValueError(f"load_csv: row {r + first_line} of {os.fspath(path)!r} has {len(row)} fields, "
                             f"the {'header' if header else 'first row'} has {width}")
    return names, data, first_line


def _column_index(column: Column, names: list[str], header: bool, role: str) -> int:
    """The position of ``column`` (a name or a position), or a KeyError listing the columns."""
    if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
        if not -len(names) <= column < len(names):
            raise KeyError(f"load_csv: {role} column position {column} is out of range for {len(names)} columns")
        return int(column) % len(names)
    if not header:
        raise KeyError(f"load_csv: {role} column {column!r} is a name, but header=False; give positions")
    if column not in names:
        raise KeyError(f"load_csv: no column named {column!r} ({role}); the columns are {names}")
    return names.index(column)


def _numeric_columns(rows: list[list[str]], columns: list[int], names: list[str], first_line: int,
                     missing: float | None, dtype: Any) -> np.ndarray:
    """The cells of ``columns`` as numbers, or a ValueError naming the first cell that is not one."""
    out = np.empty((len(rows), len(columns)), dtype=np.float64)
    for r, row in enumerate(rows):
        for j, c in enumerate(columns):
            out[r, j] = _number(row[c].strip(), names[c], r + first_line, missing)
    return out.astype(dtype, copy=False)


def _number(cell: str, column: str, line: int, missing: float | None) -> float:
    if cell == "":
        if missing is None:
            raise ValueError(f"load_csv: column {column!r} is empty in row {line}; pass missing=float('nan') "
                             "(or another value) to read empty cells")
        return missing
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"load_csv: column {column!r} has the non-numeric value {cell!r} in row {line}; "
                         "leave the column out with features=, or pass target_classes= for a text "
                         "target") from None


def _class_column(rows: list[list[str]], column: int, name: str, first_line: int,
                  classes: list[str]) -> np.ndarray:
    """Each row's target label as its position in ``classes``."""
    position = {label: i for i, label in enumerate(classes)}
    labels = np.empty(len(rows), dtype=np.int64)
    for r, row in enumerate(rows):
        label = row[column].strip()
        if label not in position:
            raise ValueError(f"load_csv: target {name!r} has the value {label!r} in row {r + first_line}, "
                             f"which is not among target_classes {classes}")
        labels[r] = position[label]
    return labels

"""Graphs to work on: karate club, readers for local copies of public datasets.

Every reader returns ``(nodes, src, dst, labels)`` ready for
``graph.build_graph``: ``nodes`` and ``labels`` aligned, and the edges of an
undirected dataset listed in both directions, once each, without self loops.
Nothing here downloads; point the readers at files on disk.
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DatasetArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def karate_club() -> DatasetArrays:
    """Zachary's karate club: 34 members, 78 friendships, two factions.

    Returns:
        ``(nodes, src, dst, labels)``: ids 0..33, 156 directed edges, and each
        member's faction ("Mr. Hi" or "Officer").
    """
    import networkx as nx

    club = nx.karate_club_graph()
    nodes = np.array(sorted(club.nodes), dtype=np.int64)
    edges = np.array(list(club.edges), dtype=np.int64)
    labels = np.array([club.nodes[n]["club"] for n in nodes], dtype=object)
    src, dst = symmetrize(edges[:, 0], edges[:, 1])
    return nodes, src, dst, labels


def musae(folder: str | Path) -> DatasetArrays:
    """Read a MUSAE graph (such as Facebook page-page) from its CSV files.

    Args:
        folder: holds ``edges.csv`` (columns ``id_1,id_2``) and ``target.csv``
            (columns ``id`` and ``target``, or ``page_type`` as the label).

    Returns:
        ``(nodes, src, dst, labels)`` with the undirected edges symmetrised.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a required column is missing.
    """
    folder = Path(folder)
    edges = _read_csv(folder / "edges.csv", ["id_1", "id_2"])
    target = pd.read_csv(folder / "target.csv")
    label_column = "target" if "target" in target else "page_type"
    _require_columns(folder / "target.csv", target, ["id", label_column])
    src, dst = symmetrize(edges["id_1"].to_numpy(), edges["id_2"].to_numpy())
    return (
        target["id"].to_numpy(),
        src,
        dst,
        target[label_column].to_numpy(dtype=object),
    )


def planetoid(root: str | Path, name: str) -> DatasetArrays:
    """Read a Planetoid citation graph (Cora, CiteSeer, PubMed) from PyG's raw files.

    Args:
        root: the folder PyG's ``Planetoid(root, name)`` uses; the files are
            read from ``root/name/raw/ind.<name>.*``.
        name: "Cora", "CiteSeer" or "PubMed" (any case).

    Returns:
        ``(nodes, src, dst, labels)``: ids 0..n-1, the coalesced symmetric edge
        list, and int class labels (-1 for CiteSeer's unlabelled test slots).
    """
    raw = _planetoid_raw(root, name)
    labels = np.vstack([raw["ally"], _test_rows(raw, "ty")])
    known = labels.any(axis=1)
    classes = np.where(known, labels.argmax(axis=1), -1).astype(object)
    classes[~known] = None
    graph = raw["graph"]
    src = np.concatenate([np.asarray(graph[v], dtype=np.int64) for v in graph])
    dst = np.repeat(np.fromiter(graph, np.int64), [len(graph[v]) for v in graph])
    src, dst = symmetrize(src, dst)
    return np.arange(len(classes), dtype=np.int64), src, dst, classes


def planetoid_features(root: str | Path, name: str) -> np.ndarray:
    """Return the ``[num_nodes, num_words]`` float32 bag-of-words features."""
    raw = _planetoid_raw(root, name)
    allx = raw["allx"].toarray()
    return np.vstack([allx, _test_rows(raw, "tx").toarray()]).astype(np.float32)


def symmetrize(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every edge, once each, self loops dropped, sorted."""
    src, dst = np.asarray(src), np.asarray(dst)
    both = pd.DataFrame(
        {"s": np.concatenate([src, dst]), "d": np.concatenate([dst, src])}
    )
    both = both[both["s"] != both["d"]].drop_duplicates()
    both = both.sort_values(["d", "s"], kind="stable")
    return both["s"].to_numpy(), both["d"].to_numpy()


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path)
    _require_columns(path, frame, columns)
    return frame


def _require_columns(path: Path, frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing columns {missing} (has {list(frame.columns)})"
        )


def _planetoid_raw(root: str | Path, name: str) -> dict[str, Any]:
    folder = Path(root) / name / "raw"
    stem = name.lower()
    parts = {}
    for part in ("allx", "ally", "tx", "ty", "graph"):
        path = folder / f"ind.{stem}.{part}"
        parts[part] = _safe_unpickle(path.read_bytes(), path)
    test_index = np.loadtxt(folder / f"ind.{stem}.test.index", dtype=np.int64)
    parts["test_index"] = np.atleast_1d(test_index)
    return parts


def _test_rows(raw: dict[str, Any], part: str) -> Any:
    """Test rows at their nodes' positions: row ``i`` of the file belongs to
    node ``test_index[i]``; gaps in the range (CiteSeer has some) stay zero."""
    import scipy.sparse as sp

    test_index = raw["test_index"]
    lo, hi = int(test_index.min()), int(test_index.max())
    place = sp.csr_matrix(
        (np.ones(len(test_index)), (test_index - lo, np.arange(len(test_index)))),
        shape=(hi - lo + 1, len(test_index)),
    )
    return place @ raw[part]


class _PickledCSR:
    """Stands in for the old ``scipy.sparse.csr_matrix`` class the files name."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


class _RestrictedUnpickler(pickle.Unpickler):
    """Loads only the few plain classes Planetoid files contain; no code runs."""

    _ALLOWED = {
        ("collections", "defaultdict"),
        ("__builtin__", "list"),
        ("builtins", "list"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("scipy.sparse") and name == "csr_matrix":
            return _PickledCSR
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy") and name == "_reconstruct":
            return np._core.multiarray._reconstruct  # type: ignore[attr-defined]
        if module in ("__builtin__", "builtins"):
            return list
        if module == "collections":
            import collections

            return collections.defaultdict
        return getattr(np, name)


def _safe_unpickle(data: bytes, path: Path) -> Any:
    try:
        value = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"{path}: not a readable Planetoid file ({error})") from error
    if isinstance(value, _PickledCSR):
        import scipy.sparse as sp

        s = value.state
        return sp.csr_matrix((s["data"], s["indices"], s["indptr"]), shape=s["_shape"])
    return value

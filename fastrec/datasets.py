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
import zipfile
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


def reddit(root: str | Path) -> DatasetArrays:
    """Read the Reddit post graph from the raw files PyG's ``Reddit`` keeps.

    Args:
        root: the folder given to ``torch_geometric.datasets.Reddit(root)``;
            ``root/raw/reddit_data.npz`` (``feature``, ``label``,
            ``node_types``) and ``root/raw/reddit_graph.npz`` (a scipy sparse
            matrix saved with ``save_npz``) are read without pickle.

    Returns:
        ``(nodes, src, dst, labels)``: ids 0..n-1 (232,965 for the real files),
        the stored directed edges (114,615,892, both directions) as int32, and
        the int subreddit labels.

    Raises:
        FileNotFoundError: naming the missing file (download the dataset with
            PyG on a machine with network access).
    """
    raw = Path(root) / "raw"
    data = _load_npz(raw / "reddit_data.npz", ["label"])
    graph = _load_npz(raw / "reddit_graph.npz", ["shape"])
    labels = np.asarray(data["label"]).astype(np.int64)
    num_nodes = int(graph["shape"][0])
    if len(labels) != num_nodes:
        raise ValueError(
            f"{raw}: {len(labels)} labels for a graph of {num_nodes} nodes"
        )
    src, dst = _sparse_coordinates(graph, raw / "reddit_graph.npz")
    return np.arange(num_nodes, dtype=np.int64), src, dst, labels


def reddit_features(root: str | Path) -> np.ndarray:
    """Return Reddit's ``[num_nodes, 602]`` float32 post features."""
    data = _load_npz(Path(root) / "raw" / "reddit_data.npz", ["feature"])
    return np.asarray(data["feature"], dtype=np.float32)


def synthetic_communities(
    num_nodes: int,
    num_edges: int,
    num_classes: int,
    *,
    homophily: float = 0.75,
    degree_spread: float = 1.0,
    class_skew: float = 0.8,
    seed: int = 0,
    chunk_size: int = 1 << 23,
) -> DatasetArrays:
    """A degree-corrected community graph, generated vectorised in chunks.

    Class sizes fall off as ``rank ** -class_skew``; each node gets a
    log-normal propensity (``sigma = degree_spread``) that sets its expected
    degree; a share ``homophily`` of edges join two nodes of one class, the
    rest two nodes of different classes, both ends drawn by propensity.

    Args:
        num_nodes: number of nodes.
        num_edges: number of directed edges; they come in reverse pairs, so an
            odd count gets one unpaired edge.
        num_classes: number of classes, at most ``num_nodes``.
        homophily: share of edges inside a class, in [0, 1].
        degree_spread: sigma of the log-normal degree propensity (0: equal).
        class_skew: exponent of the class-size fall-off (0: equal sizes).
        seed: seeds everything.
        chunk_size: edge pairs drawn per step, bounding temporary memory.

    Returns:
        ``(nodes, src, dst, labels)``: ids 0..n-1, int32 edge endpoints, and
        int64 labels in 0..num_classes-1 (every class non-empty).
    """
    if not 1 <= num_classes <= num_nodes:
        raise ValueError(
            f"num_classes must be in [1, num_nodes={num_nodes}] (got {num_classes})"
        )
    if not 0.0 <= homophily <= 1.0 or (num_classes == 1 and homophily < 1.0):
        raise ValueError(
            f"homophily must be in [0, 1], and 1 for a single class (got {homophily})"
        )
    if num_edges < 0:
        raise ValueError(f"num_edges must be >= 0 (got {num_edges})")

    rng = np.random.default_rng(seed)
    labels = _class_labels(num_nodes, num_classes, class_skew, rng)
    table, slot_class, starts, sizes = _propensity_table(
        labels, num_classes, degree_spread, rng
    )

    src = np.empty(num_edges, dtype=np.int32)
    dst = np.empty(num_edges, dtype=np.int32)
    num_pairs = (num_edges + 1) // 2
    for lo in range(0, num_pairs, chunk_size):
        hi = min(lo + chunk_size, num_pairs)
        a, b = _draw_pairs(hi - lo, table, slot_class, starts, sizes, homophily, rng)
        src[lo:hi], dst[lo:hi] = a, b
        # The reverse of pair i is edge num_pairs + i (absent for an odd tail).
        back = slice(num_pairs + lo, min(num_pairs + hi, num_edges))
        count = back.stop - back.start
        src[back], dst[back] = b[:count], a[:count]
    return np.arange(num_nodes, dtype=np.int64), src, dst, labels


def _class_labels(
    num_nodes: int, num_classes: int, skew: float, rng: np.random.Generator
) -> np.ndarray:
    weights = np.arange(1, num_classes + 1, dtype=np.float64) ** -skew
    extra = rng.multinomial(num_nodes - num_classes, weights / weights.sum())
    labels = np.repeat(np.arange(num_classes), extra + 1)  # none left empty
    return rng.permutation(labels).astype(np.int64)


def _propensity_table(
    labels: np.ndarray, num_classes: int, spread: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes repeated in proportion to propensity, grouped by class, with each
    slot's class and every class's first slot and slot count.

    Drawing a uniform slot of a class's slice then draws a member of that class
    with probability proportional to its propensity, in O(1).
    """
    num_nodes = len(labels)
    propensity = (
        rng.lognormal(0.0, spread, num_nodes) if spread > 0 else (np.ones(num_nodes))
    )
    slots = max(16 * num_nodes, 1 << 22)
    copies = np.maximum(1, np.round(propensity / propensity.sum() * slots))
    by_class = np.argsort(labels, kind="stable")
    table = np.repeat(by_class.astype(np.int32), copies[by_class].astype(np.int64))
    slot_class = labels[table].astype(np.int16 if num_classes < 2**15 else np.int64)
    sizes = np.bincount(slot_class, minlength=num_classes).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return table, slot_class, starts, sizes


def _draw_pairs(
    count: int,
    table: np.ndarray,
    slot_class: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    homophily: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    slot = rng.integers(0, len(table), count, dtype=np.int64)
    src = table[slot]
    cls = slot_class[slot]
    inside = rng.random(count, dtype=np.float32) < homophily
    # Inside: a slot of the source's own class. Across: a slot outside it,
    # drawn from the table with that class's slice cut out.
    own_size = sizes[cls]
    span = np.where(inside, own_size, len(table) - own_size)
    offset = (rng.random(count) * span).astype(np.int64)  # float64: exact spans
    target = np.where(
        inside,
        starts[cls] + offset,
        np.where(offset < starts[cls], offset, offset + own_size),
    )
    return src, table[target]


def symmetrize(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every edge, once each, self loops dropped, sorted."""
    src, dst = np.asarray(src), np.asarray(dst)
    both = pd.DataFrame(
        {"s": np.concatenate([src, dst]), "d": np.concatenate([dst, src])}
    )
    both = both[both["s"] != both["d"]].drop_duplicates()
    both = both.sort_values(["d", "s"], kind="stable")
    return both["s"].to_numpy(), both["d"].to_numpy()


def _load_npz(path: Path, keys: list[str]) -> Any:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; fetch the dataset with PyG on a machine with "
            "network access and copy its raw folder here"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error})") from error
    missing = [k for k in keys if k not in archive.files]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing} (has {archive.files})")
    return archive


def _sparse_coordinates(archive: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every stored entry of a ``save_npz`` archive, as int32."""
    if "row" in archive.files and "col" in archive.files:  # COO
        return (
            np.asarray(archive["row"], dtype=np.int32),
            np.asarray(archive["col"], dtype=np.int32),
        )
    if "indptr" in archive.files and "indices" in archive.files:  # CSR
        indptr = archive["indptr"]
        rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int32), np.diff(indptr))
        return rows, np.asarray(archive["indices"], dtype=np.int32)
    raise ValueError(f"{path}: neither COO (row, col) nor CSR (indptr, indices)")


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

"""Save and load what a server needs: one directory, no pickle, replaced atomically.

``save`` writes a graph, an encoder, the embeddings and their index to a
directory; ``load`` gives them back as a frozen ``Bundle`` with the large parts
memory-mapped, so several server processes share one copy; ``load_graph`` reads
only the graph.

A bundle directory holds ``manifest.json`` and one data folder it names. The
manifest records the format, the fastrec version, the encoder config, counts,
and the size and SHA-256 of every file in the data folder. Arrays are ``.npy``
files read with ``allow_pickle=False``, ids and class values that are not all
integers are JSON lists (which keep ints, floats, strings and booleans apart),
encoder weights are safetensors and the index is in faiss's own format. A save
writes a new data folder, syncs it to disk, then swaps the manifest with one
``os.replace``; a crash at any moment leaves the previous bundle or the new
one, never a mix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import shutil
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import safetensors.torch
import torch

from . import __version__
from .errors import BundleError
from .graph import Graph
from .index import NeighborIndex, as_float32, read_index, write_index
from .model import Encoder, EncoderConfig

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

FORMAT = "fastrec-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPH_ARRAYS = ("ids", "indptr", "indices", "labels", "classes", "excluded")

_DATA_PREFIX = "data-"
_MANIFEST_TMP_PREFIX = ".manifest-"
_LOCK = ".lock"
_ENCODER = "encoder.safetensors"
_EMBEDDINGS = "embeddings.npy"
_INDEX = "index.faiss"
_INDEX_POSITIONS = "index_positions.npy"
# Smaller arrays are read into memory: mapping them would save nothing.
_MMAP_MIN_BYTES = 1 << 16
_HASH_CHUNK = 1 << 20
_JSON_SCALARS = (str, int, float, bool)
_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


@dataclass(frozen=True, eq=False)
class Bundle:
    """Everything a server needs, as ``load`` returns it.

    Attributes:
        path: the bundle directory.
        manifest: the parsed ``manifest.json``.
        graph: the graph.
        config: the encoder's resolved config.
        encoder: the encoder, in eval mode.
        embeddings: ``[num_nodes, dim]`` float32, read-only, aligned with graph
            positions; memory-mapped when loaded with ``mmap=True``.
        index: the similarity index over the non-excluded nodes.
    """

    path: Path
    manifest: dict[str, Any]
    graph: Graph
    config: EncoderConfig
    encoder: Encoder
    embeddings: np.ndarray
    index: NeighborIndex

    @property
    def version(self) -> str:
        """The name of the data folder: changes with every save."""
        return str(self.manifest["data"])

    def __repr__(self) -> str:
        return (
            f"Bundle(path={str(self.path)!r}, version={self.version!r}, "
            f"graph={self.graph!r}, dim={self.index.dim}, "
            f"index={self.index.kind!r}/{self.index.metric!r})"
        )


def save(
    path: str | Path,
    *,
    graph: Graph,
    encoder: Encoder,
    embeddings: torch.Tensor | np.ndarray,
    index: NeighborIndex,
    config: EncoderConfig | None = None,
) -> Path:
    """Save a bundle to the directory ``path``, replacing any bundle there.

    Args:
        path: the bundle directory; created if missing. An existing directory
            must hold a bundle or be empty.
        graph: the graph.
        encoder: the encoder built for ``graph``.
        embeddings: ``[num_nodes, dim]`` embeddings aligned with positions.
        index: the index over ``embeddings``.
        config: the encoder's config; defaults to ``encoder.config`` and must
            agree with it when given.

    Returns:
        The bundle directory, for ``load``.

    Raises:
        ValueError: the parts do not fit together, ``path`` holds other files,
            or ids or class values are not ints, floats, strings or booleans.

    Note:
        Concurrent saves to one directory are serialised by a lock file
        (``.lock``). A process that loaded the previous bundle memory-mapped
        keeps reading it after the swap: its files are unlinked, not
        overwritten.
    """
    config = _check_parts(graph, encoder, config, embeddings, index)
    vectors = as_float32(embeddings, "embeddings")
    root = _prepare_root(Path(path))

    start = time.perf_counter()
    with _locked(root):
        data = root / _new_data_name()
        data.mkdir()
        graph_files = _write_graph(data, graph)
        _write_tensors(data / _ENCODER, encoder)
        _write_npy(data / _EMBEDDINGS, vectors)
        _write_faiss(data, index)
        _fsync_path(data)
        files = {p.name: _describe(p) for p in sorted(data.iterdir())}
        manifest = _manifest(
            data.name, graph, config, vectors, index, graph_files, files
        )
        _write_manifest(root, manifest)
        _remove_stale(root, keep=data.name)
    logger.info(
        "saved bundle %s/%s in %.2f s", root, data.name, time.perf_counter() - start
    )
    return root


def load(
    path: str | Path, *, device: str = "cpu", mmap: bool = True, verify: bool = True
) -> Bundle:
    """Load a bundle written by ``save``.

    Nothing read can run code: JSON, ``.npy`` without pickle, safetensors and
    faiss's format.

    Args:
        path: the bundle directory.
        device: where the encoder's weights go ("cpu", "cuda", ...).
        mmap: map the embeddings, the graph arrays, the encoder weights
            (copy-on-write) and the index (flat, IVF and HNSW) from the files
            instead of reading them, so processes that load one bundle share
            its memory.
        verify: check every file's SHA-256 against the manifest. Sizes are
            always checked.

    Returns:
        The frozen ``Bundle``.

    Raises:
        BundleError: the directory holds no bundle, or a file is missing,
            truncated, altered, or of another format version; the message
            names the file.

    Note:
        Verifying reads every file once (about a second per 1.5 GB); with
        ``verify=False`` an altered file of the right size goes unnoticed and
        can crash faiss.
    """
    root = Path(path)
    manifest = read_manifest(root)
    try:
        return _load_bundle(root, manifest, device, mmap, verify)
    except BundleError:
        latest = read_manifest(root)
        if latest["data"] == manifest["data"]:
            raise
        # A save replaced the bundle while it was being read: read the new one.
        return _load_bundle(root, latest, device, mmap, verify)


def load_graph(path: str | Path, *, mmap: bool = True, verify: bool = True) -> Graph:
    """Load only the graph of a bundle, to retrain without rebuilding it.

    Args:
        path: the bundle directory.
        mmap: map the larger graph arrays instead of reading them.
        verify: check the SHA-256 of the graph's files.

    Returns:
        The ``Graph`` as it was saved.

    Raises:
        BundleError: as ``load``.
    """
    root = Path(path)
    manifest = read_manifest(root)
    data = root / manifest["data"]
    _check_files(data, manifest["files"], _graph_files(manifest), verify)
    return _read_graph(data, manifest, mmap)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Return the parsed manifest of the bundle at ``path``.

    Raises:
        BundleError: no manifest, not JSON, or another format or version.
    """
    file = Path(path) / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(
            f"{file}: missing, so {path} holds no bundle; write one with "
            "fastrec.save or `fastrec build`"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{file}: not valid JSON ({error}); it is altered") from None
    _check_manifest(file, manifest)
    return manifest


def _check_parts(
    graph: Graph,
    encoder: Encoder,
    config: EncoderConfig | None,
    embeddings: torch.Tensor | np.ndarray,
    index: NeighborIndex,
) -> EncoderConfig:
    """The resolved config, after checking that the parts fit one graph."""
    if config is not None:
        inputs = config.inputs or encoder.config.inputs  # None means "resolve"
        if dataclasses.replace(config, inputs=inputs) != encoder.config:
            raise ValueError(
                f"config must match encoder.config (got {config} for an encoder "
                f"built with {encoder.config})"
            )
    if encoder.num_nodes != graph.num_nodes:
        raise ValueError(
            f"encoder must be built for the graph's {graph.num_nodes} nodes "
            f"(got one for {encoder.num_nodes})"
        )
    if tuple(embeddings.shape) != (graph.num_nodes, index.dim):
        raise ValueError(
            f"embeddings must have shape [{graph.num_nodes}, {index.dim}] to match "
            f"the graph and the index (got {list(embeddings.shape)})"
        )
    positions = index.positions
    if len(positions) and (positions.min() < 0 or positions.max() >= graph.num_nodes):
        raise ValueError(
            f"index.positions must be graph positions in [0, {graph.num_nodes}) "
            f"(got [{positions.min()}, {positions.max()}])"
        )
    return encoder.config


def _prepare_root(root: Path) -> Path:
    if root.exists() and not root.is_dir():
        raise ValueError(f"path must be a directory (got the file {root})")
    root.mkdir(parents=True, exist_ok=True)
    if (root / MANIFEST).exists():
        return root
    foreign = sorted(p.name for p in root.iterdir() if not _is_ours(p.name))
    if foreign:
        raise ValueError(
            f"path must be a bundle directory, a new one or an empty one (got "
            f"{root}, which holds {foreign[:5]} and no {MANIFEST})"
        )
    return root


def _is_ours(name: str) -> bool:
    return name in (MANIFEST, _LOCK) or name.startswith(
        (_DATA_PREFIX, _MANIFEST_TMP_PREFIX)
    )


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the bundle directory (a no-op without flock)."""
    with open(root / _LOCK, "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _new_data_name() -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{_DATA_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"


def _write_graph(data: Path, graph: Graph) -> dict[str, str]:
    """Write the graph's arrays; returns the file name of each."""
    return {
        name: _write_array(data, name, getattr(graph, name)) for name in GRAPH_ARRAYS
    }


def _write_array(data: Path, name: str, array: np.ndarray) -> str:
    """``name.npy`` for numeric arrays, ``name.json`` for object arrays."""
    if array.dtype != object:
        _write_npy(data / f"{name}.npy", array)
        return f"{name}.npy"
    values = [v.item() if isinstance(v, np.generic) else v for v in array.tolist()]
    bad = next((v for v in values if not isinstance(v, _JSON_SCALARS)), None)
    if bad is not None:
        raise ValueError(
            f"graph.{name}: a bundle keeps ints, floats, strings and booleans "
            f"(got {type(bad).__name__} {bad!r})"
        )
    try:
        text = json.dumps(values, allow_nan=False)
    except ValueError:
        raise ValueError(
            f"graph.{name}: values must be finite (got NaN or inf)"
        ) from None
    _write_bytes(data / f"{name}.json", text.encode("utf-8"))
    return f"{name}.json"


def _write_npy(file: Path, array: np.ndarray) -> None:
    with open(file, "wb") as out:
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
        _sync(out)


def _write_bytes(file: Path, payload: bytes) -> None:
    with open(file, "wb") as out:
        out.write(payload)
        _sync(out)


def _write_tensors(file: Path, encoder: Encoder) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    safetensors.torch.save_file(state, str(file), metadata={"format": "pt"})
    # safetensors creates the file private (0600); give it the umask's mode.
    os.chmod(file, file.parent.stat().st_mode & 0o666)
    _fsync_path(file)


def _write_faiss(data: Path, index: NeighborIndex) -> None:
    write_index(index, data / _INDEX)
    _fsync_path(data / _INDEX)
    _write_npy(data / _INDEX_POSITIONS, index.positions)


def _sync(out: Any) -> None:
    out.flush()
    os.fsync(out.fileno())


def _fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's entries are data too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(file: Path) -> dict[str, Any]:
    return {"bytes": file.stat().st_size, "sha256": _sha256(file)}


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_HASH_CHUNK)
    view = memoryview(buffer)
    with open(file, "rb", buffering=0) as f:
        while size := f.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def _manifest(
    data_name: str,
    graph: Graph,
    config: EncoderConfig,
    vectors: np.ndarray,
    index: NeighborIndex,
    graph_files: dict[str, str],
    files: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastrec_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "data": data_name,
        "config": json.loads(config.to_json()),
        "counts": {
            "nodes": graph.num_nodes,
            "edges": graph.num_edges,
            "classes": graph.num_classes,
            "excluded": int(graph.excluded.sum()),
            "indexed": index.num_rows,
            "dim": int(vectors.shape[1]),
        },
        "index": {"kind": index.kind, "metric": index.metric},
        "graph": graph_files,
        "files": files,
    }


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    temporary = root / f"{_MANIFEST_TMP_PREFIX}{uuid.uuid4().hex[:8]}.json"
    _write_bytes(temporary, json.dumps(manifest, indent=2).encode("utf-8"))
    os.replace(temporary, root / MANIFEST)
    _fsync_path(root)


def _remove_stale(root: Path, keep: str) -> None:
    """Remove older data folders and manifests left by interrupted saves."""
    for entry in root.iterdir():
        if entry.name.startswith(_DATA_PREFIX) and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(_MANIFEST_TMP_PREFIX):
            entry.unlink(missing_ok=True)


def _check_manifest(file: Path, manifest: Any) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{file}: not a fastrec bundle manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{file}: bundle format version {version!r}, but fastrec "
            f"{__version__} reads version {FORMAT_VERSION}"
        )
    required = ("data", "config", "counts", "index", "graph", "files")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise BundleError(f"{file}: lacks the entries {missing}; it is altered")
    graph = manifest["graph"]
    if not isinstance(graph, dict) or set(graph) != set(GRAPH_ARRAYS):
        raise BundleError(f"{file}: its graph entry must name {list(GRAPH_ARRAYS)}")
    names = [manifest["data"], *manifest["files"], *graph.values()]
    if any(
        not isinstance(n, str) or Path(n).name != n or n in ("", ".", "..")
        for n in names
    ):
        raise BundleError(f"{file}: names a file outside the bundle; it is altered")


def _load_bundle(
    root: Path, manifest: dict[str, Any], device: str, mmap: bool, verify: bool
) -> Bundle:
    start = time.perf_counter()
    data = root / manifest["data"]
    names = [*_graph_files(manifest), _ENCODER, _EMBEDDINGS, _INDEX, _INDEX_POSITIONS]
    _check_files(data, manifest["files"], names, verify)
    graph = _read_graph(data, manifest, mmap)
    config = _read_config(root, manifest)
    encoder = _read_encoder(data / _ENCODER, config, graph, device, mmap)
    embeddings = _read_array(data / _EMBEDDINGS, mmap)
    index = _read_faiss(data, manifest, mmap)
    _check_loaded(data, graph, embeddings, index)
    logger.info(
        "loaded bundle %s/%s in %.2f s", root, data.name, time.perf_counter() - start
    )
    return Bundle(root, manifest, graph, config, encoder, embeddings, index)


def _check_files(
    data: Path, files: dict[str, Any], names: list[str], verify: bool
) -> None:
    """Each named file is listed, present, of its recorded size and (if asked) hash."""
    for name in names:
        file = data / name
        if name not in files:
            raise BundleError(f"{file}: not listed in the manifest; it is altered")
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            raise BundleError(f"{file}: missing; the bundle is incomplete") from None
        expected = files[name]
        if size != expected["bytes"]:
            raise BundleError(
                f"{file}: {size} bytes where the manifest records "
                f"{expected['bytes']}; the file is truncated or altered"
            )
        if verify and _sha256(file) != expected["sha256"]:
            raise BundleError(
                f"{file}: its SHA-256 differs from the manifest's; the file is "
                "altered or corrupt"
            )


def _graph_files(manifest: dict[str, Any]) -> list[str]:
    return [manifest["graph"][name] for name in GRAPH_ARRAYS]


def _read_graph(data: Path, manifest: dict[str, Any], mmap: bool) -> Graph:
    arrays = {
        name: _read_array(data / manifest["graph"][name], mmap) for name in GRAPH_ARRAYS
    }
    ids = arrays["ids"]
    num_nodes, num_edges = len(ids), len(arrays["indices"])
    checks = {
        "indptr": arrays["indptr"].shape == (num_nodes + 1,)
        and int(arrays["indptr"][-1]) == num_edges,
        "labels": arrays["labels"].shape == (num_nodes,),
        "excluded": arrays["excluded"].shape == (num_nodes,)
        and arrays["excluded"].dtype == bool,
        "ids": manifest["counts"].get("nodes") == num_nodes,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise BundleError(
            f"{data / manifest['graph'][bad[0]]}: does not fit the other graph "
            "arrays or the manifest's counts; the bundle is altered"
        )
    for array in arrays.values():
        if array.flags.writeable:
            array.setflags(write=False)
    return Graph(**arrays, id_index=pd.Index(ids, copy=False))


def _read_array(file: Path, mmap: bool) -> np.ndarray:
    if file.suffix == ".json":
        return _read_json_array(file)
    mapped = mmap and file.stat().st_size >= _MMAP_MIN_BYTES
    try:
        array = np.load(file, mmap_mode="r" if mapped else None, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise BundleError(f"{file}: not a readable .npy array ({error})") from None
    # A plain view of the mapping: np.memmap's Python hooks slow every indexing.
    return array.view(np.ndarray) if mapped else array


def _read_json_array(file: Path) -> np.ndarray:
    try:
        values = json.loads(file.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(values, list) or not all(
        isinstance(v, _JSON_SCALARS) for v in values
    ):
        raise BundleError(f"{file}: expected a JSON list of ids or values")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _read_config(root: Path, manifest: dict[str, Any]) -> EncoderConfig:
    try:
        return EncoderConfig.from_dict(manifest["config"])
    except (TypeError, ValueError) as error:
        raise BundleError(f"{root / MANIFEST}: bad encoder config ({error})") from None


def _read_encoder(
    file: Path, config: EncoderConfig, graph: Graph, device: str, mmap: bool
) -> Encoder:
    """Rebuild the encoder around the saved tensors, without initialising weights."""
    state = _read_tensors(file, mmap and torch.device(device).type == "cpu")
    state = {name: tensor.to(device) for name, tensor in state.items()}
    with torch.device("meta"):
        encoder = Encoder(config, graph.num_nodes, state.get("given"))
    try:
        encoder.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise BundleError(f"{file}: weights do not fit the config ({error})") from None
    return encoder.eval()


def _read_tensors(file: Path, mmap: bool) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; mapped copy-on-write when ``mmap``."""
    header, start = _safetensors_header(file)
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    if not mmap or any(
        e.get("dtype") not in _SAFETENSORS_DTYPES for e in entries.values()
    ):
        return safetensors.torch.load_file(str(file))
    return {name: _map_tensor(file, start, name, e) for name, e in entries.items()}


def _safetensors_header(file: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and where its data begins."""
    with open(file, "rb") as f:
        prefix = f.read(8)
        size = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else -1
        raw = f.read(size) if 0 < size <= file.stat().st_size else b""
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise BundleError(f"{file}: not a safetensors file")
    return header, 8 + size


def _map_tensor(
    file: Path, start: int, name: str, entry: dict[str, Any]
) -> torch.Tensor:
    dtype = np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]])
    shape = tuple(entry["shape"])
    begin, end = entry["data_offsets"]
    if end - begin != dtype.itemsize * int(np.prod(shape)):
        raise BundleError(f"{file}: tensor {name!r} has inconsistent offsets")
    if end == begin:
        return torch.from_numpy(np.zeros(shape, dtype=dtype))
    array = np.memmap(file, dtype=dtype, mode="c", offset=start + begin, shape=shape)
    return torch.from_numpy(array)


def _read_faiss(data: Path, manifest: dict[str, Any], mmap: bool) -> NeighborIndex:
    settings = manifest["index"]
    positions = _read_array(data / _INDEX_POSITIONS, mmap=False)
    try:
        return read_index(
            data / _INDEX, positions, settings["metric"], settings["kind"], mmap=mmap
        )
    except (RuntimeError, ValueError) as error:
        raise BundleError(f"{data / _INDEX}: not a readable index ({error})") from None


def _check_loaded(
    data: Path, graph: Graph, embeddings: np.ndarray, index: NeighborIndex
) -> None:
    if (
        embeddings.shape != (graph.num_nodes, index.dim)
        or embeddings.dtype != np.float32
    ):
        raise BundleError(
            f"{data / _EMBEDDINGS}: shape {list(embeddings.shape)} "
            f"{embeddings.dtype}, expected [{graph.num_nodes}, {index.dim}] float32"
        )

"""Shared fixtures: the local dataset copies and small seeded graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import fastrec

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def datasets_dir() -> Path:
    """``../shared/datasets`` beside the repository, or a skip."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"no local datasets at {SHARED_DATASETS}")
    return SHARED_DATASETS


def random_graph(
    num_nodes: int = 60, num_edges: int = 300, seed: int = 0, **kwargs
) -> fastrec.Graph:
    """A seeded random directed multigraph with some isolated destinations."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, num_nodes, num_edges)
    dst = rng.integers(0, max(1, num_nodes - 5), num_edges)
    return fastrec.build_graph(np.arange(num_nodes), src, dst, **kwargs)


def gpu_available() -> bool:
    return torch.cuda.is_available()


gpu = pytest.mark.skipif(not gpu_available(), reason="needs a CUDA device")

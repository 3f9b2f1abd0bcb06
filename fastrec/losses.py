"""Training objectives: embeddings of a batch in, a scalar loss out.

``pairwise_loss`` is the supervised objective (same-label pairs pulled
together, different-label pairs pushed past a margin); ``link_loss`` the
unsupervised one (an edge's endpoints scored above sampled negatives). Both
come in a cosine and an l2 form and use whole-batch tensor operations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

METRICS = ("cosine", "l2")

# The original's margins: cosine similarity of a different-label pair is
# pushed below 0.5; its squared l2 distance above 0.25.
DEFAULT_MARGINS = {"cosine": 0.5, "l2": 0.25}


def pairwise_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    metric: str = "cosine",
    margin: float | None = None,
) -> Tensor:
    """The supervised loss over every pair of labelled rows in a batch.

    Cosine form (as ``torch.nn.CosineEmbeddingLoss``): ``1 - cos`` for a
    same-label pair, ``max(0, cos - margin)`` for a different-label pair. l2
    form: the squared distance ``d`` for a same-label pair,
    ``max(0, margin - d)`` for a different-label pair. The loss averages the
    same-label and the different-label terms separately and adds the two, so
    neither kind of pair drowns the other however many classes there are.

    Args:
        embeddings: ``[n, dim]`` float rows.
        labels: ``[n]`` int64 class codes; rows with ``-1`` take no part.
        metric: "cosine" or "l2".
        margin: see above; None takes 0.5 for cosine and 0.25 for l2.

    Returns:
        A scalar tensor; zero (still attached to ``embeddings``) when the
        batch holds no pair of the kind a term needs.

    Raises:
        ValueError: a bad ``metric`` or shapes that do not match.
    """
    _check_metric(metric)
    if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"embeddings must be [n, dim] and labels [n] (got "
            f"{list(embeddings.shape)} and {list(labels.shape)})"
        )
    margin = DEFAULT_MARGINS[metric] if margin is None else float(margin)
    known = labels >= 0
    x, y = embeddings[known], labels[known]

    upper = torch.ones(len(y), len(y), dtype=torch.bool, device=y.device).triu(1)
    same = (y[:, None] == y[None, :]) & upper
    different = (y[:, None] != y[None, :]) & upper
    if metric == "cosine":
        unit = F.normalize(x, dim=1)
        similarity = unit @ unit.T
        pull, push = 1 - similarity, (similarity - margin).clamp(min=0)
    else:
        distance = _squared_distances(x)
        pull, push = distance, (margin - distance).clamp(min=0)

    return _masked_mean(pull, same, embeddings) + _masked_mean(
        push, different, embeddings
    )


def link_loss(
    source: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    metric: str = "cosine",
    temperature: float = 0.5,
) -> Tensor:
    """The unsupervised loss: each edge scored above its sampled negatives.

    A pair's logit is its cosine similarity over ``temperature`` (cosine), or
    ``(1 - d) / temperature`` with ``d`` the squared distance (l2). The loss is
    binary cross-entropy with the positive pair as 1 and each negative as 0,
    the negatives of one edge averaged, then everything averaged over edges.

    Args:
        source: ``[b, dim]`` embeddings of the edges' sources.
        positive: ``[b, dim]`` embeddings of their destinations.
        negative: ``[b, k, dim]`` (or ``[b, dim]`` for ``k = 1``) embeddings of
            the sampled negative destinations.
        metric: "cosine" or "l2".
        temperature: divides the logits; smaller is sharper.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: a bad ``metric``, a non-positive ``temperature`` or shapes
            that do not match.
    """
    _check_metric(metric)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive (got {temperature!r})")
    if negative.dim() == 2:
        negative = negative.unsqueeze(1)
    if (
        source.dim() != 2
        or positive.shape != source.shape
        or negative.dim() != 3
        or negative.shape[0] != source.shape[0]
        or negative.shape[2] != source.shape[1]
    ):
        raise ValueError(
            f"source and positive must be [b, dim] and negative [b, k, dim] (got "
            f"{list(source.shape)}, {list(positive.shape)}, {list(negative.shape)})"
        )

    pos_logit = _logits(source, positive, metric) / temperature
    neg_logit = _logits(source.unsqueeze(1), negative, metric) / temperature
    pos_loss = F.softplus(-pos_logit)  # -log sigmoid(logit)
    neg_loss = F.softplus(neg_logit).mean(dim=1)  # -log (1 - sigmoid(logit))
    return (pos_loss + neg_loss).mean()


def _logits(a: Tensor, b: Tensor, metric: str) -> Tensor:
    if metric == "cosine":
        return F.cosine_similarity(a, b, dim=-1)
    return 1 - (a - b).square().sum(dim=-1)


def _squared_distances(x: Tensor) -> Tensor:
    """``[n, n]`` squared Euclidean distances, clamped at zero."""
    norms = x.square().sum(dim=1)
    return (norms[:, None] + norms[None, :] - 2 * x @ x.T).clamp(min=0)


def _masked_mean(values: Tensor, mask: Tensor, anchor: Tensor) -> Tensor:
    if not bool(mask.any()):
        return anchor.sum() * 0.0
    return values[mask].mean()


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)} (got {metric!r})")

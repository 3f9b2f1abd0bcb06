from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from fastrec.losses import link_loss, pairwise_loss

METRICS = ["cosine", "l2"]


def pairwise_by_loop(x, labels, metric, margin):
    """The obvious reference: every pair i < j, one at a time."""
    pulls, pushes = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        if labels[i] < 0 or labels[j] < 0:
            continue
        if metric == "cosine":
            cos = float(F.cosine_similarity(x[i], x[j], dim=0))
            pull, push = 1 - cos, max(0.0, cos - margin)
        else:
            d = float((x[i] - x[j]).square().sum())
            pull, push = d, max(0.0, margin - d)
        (pulls if labels[i] == labels[j] else pushes).append((pull, push))
    mean_pull = sum(p for p, _ in pulls) / len(pulls) if pulls else 0.0
    mean_push = sum(q for _, q in pushes) / len(pushes) if pushes else 0.0
    return mean_pull + mean_push


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("margin", [None, 0.1])
def test_pairwise_loss_matches_a_loop(metric, margin):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=gen) * 0.4
    labels = torch.tensor([0, 1, 2, 0, 1, -1, 2, 2, 0, -1, 1, 3])
    expected = pairwise_by_loop(
        x, labels.tolist(), metric, margin or {"cosine": 0.5, "l2": 0.25}[metric]
    )
    loss = pairwise_loss(x, labels, metric=metric, margin=margin)
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_loss_rewards_separated_classes(metric):
    labels = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    mixed = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert pairwise_loss(apart, labels, metric=metric).item() == pytest.approx(0.0)
    assert pairwise_loss(mixed, labels, metric=metric) > 0.5


def test_pairwise_loss_without_pairs_is_a_zero_with_gradient():
    x = torch.randn(3, 4, requires_grad=True)
    loss = pairwise_loss(x, torch.tensor([0, -1, -1]))
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None and not x.grad.any()


def link_by_loop(src, pos, neg, metric, temperature):
    total = 0.0
    for i in range(len(src)):

        def logit(a, b):
            if metric == "cosine":
                return float(F.cosine_similarity(a, b, dim=0)) / temperature
            return (1 - float((a - b).square().sum())) / temperature

        def softplus(z):
            return math.log1p(math.exp(z))

        negatives = [softplus(logit(src[i], n)) for n in neg[i]]
        total += softplus(-logit(src[i], pos[i])) + sum(negatives) / len(negatives)
    return total / len(src)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("num_negatives", [1, 4])
def test_link_loss_matches_a_loop(metric, num_negatives):
    gen = torch.Generator().manual_seed(1)
    src, pos = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen)
    neg = torch.randn(6, num_negatives, 3, generator=gen)
    expected = link_by_loop(src, pos, neg, metric, 0.5)
    loss = link_loss(src, pos, neg, metric=metric, temperature=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    if num_negatives == 1:  # [b, dim] negatives mean one each
        flat = link_loss(src, pos, neg[:, 0], metric=metric, temperature=0.5)
        assert flat.item() == pytest.approx(loss.item())


def test_link_loss_prefers_edges_closer_than_negatives():
    src = torch.tensor([[1.0, 0.0]])
    near, far = torch.tensor([[0.9, 0.1]]), torch.tensor([[[-1.0, 0.0]]])
    good = link_loss(src, near, far)
    bad = link_loss(src, far[:, 0], near.unsqueeze(1))
    assert good < bad


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: pairwise_loss(torch.zeros(3, 2), torch.zeros(3), metric="dot"),
            "metric must be one of",
        ),
        (lambda: pairwise_loss(torch.zeros(3, 2), torch.zeros(4)), "labels"),
        (
            lambda: link_loss(
                torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), temperature=0
            ),
            "temperature must be positive",
        ),
        (
            lambda: link_loss(torch.zeros(2, 3), torch.zeros(3, 3), torch.zeros(2, 3)),
            "source and positive",
        ),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()

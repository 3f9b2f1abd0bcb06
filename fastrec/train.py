"""Training: a graph and an encoder in, a new trained encoder and a ``History`` out.

Minibatches come from PyG's ``NodeLoader`` (supervised: labelled seed nodes)
or ``LinkLoader`` (unsupervised: edges and sampled negatives) driven by
``sampling.CSRSampler``. The input encoder is never changed.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.nn import SAGEConv
from tqdm.auto import tqdm

from .embed import embed
from .evaluate import evaluate
from .graph import Graph
from .losses import link_loss, pairwise_loss
from .model import Encoder
from .sampling import CSRSampler, check_fanouts, link_loader, node_loader

logger = logging.getLogger(__name__)

OBJECTIVES = ("supervised", "unsupervised")


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did.

    Attributes:
        epoch: 1 for the first epoch.
        loss: the mean loss over the epoch's batches.
        elapsed: seconds since training began, at the end of the epoch
            (evaluation included).
        figures: ``evaluate``'s figures on the test side after this epoch, or
            None when the epoch was not evaluated.
    """

    epoch: int
    loss: float
    elapsed: float
    figures: Mapping[str, float] | None = None


@dataclass(frozen=True, eq=False)
class History:
    """Plain records of a training run.

    Attributes:
        objective: "supervised" or "unsupervised".
        records: one ``EpochRecord`` per epoch.
        initial: the untrained encoder's figures, or None when not evaluated.
        train_mask: ``[num_nodes]`` bool, the labelled nodes trained on.
        test_mask: ``[num_nodes]`` bool, the labelled nodes evaluated (all of
            them when ``train_share`` is 1).
        embeddings: with ``keep_embeddings``, ``[num_nodes, dim]`` float32
            embeddings before training and after each epoch (``epochs + 1``
            of them); otherwise empty.
    """

    objective: str
    records: tuple[EpochRecord, ...]
    initial: Mapping[str, float] | None
    train_mask: np.ndarray = field(repr=False)
    test_mask: np.ndarray = field(repr=False)
    embeddings: tuple[Tensor, ...] = field(default=(), repr=False)

    @property
    def losses(self) -> list[float]:
        return [record.loss for record in self.records]

    def figure(self, name: str) -> list[float | None]:
        """One figure (such as "share@5") per epoch, None where not evaluated."""
        return [
            None if r.figures is None else r.figures.get(name) for r in self.records
        ]


Callback = Callable[[EpochRecord, Encoder], None]


def train(
    graph: Graph,
    encoder: Encoder,
    *,
    objective: str = "supervised",
    epochs: int,
    batch_size: int,
    lr: float,
    fanouts: Sequence[int] = (10, 25),
    negatives: int = 1,
    train_share: float = 1.0,
    eval_every: int = 1,
    levels: Sequence[int] = (5, 1),
    device: str | torch.device = "cpu",
    seed: int | None = None,
    callback: Callback | None = None,
    table_lr: float | None = None,
    margin: float | None = None,
    temperature: float = 0.5,
    replace: bool = False,
    num_workers: int = 0,
    keep_embeddings: bool = False,
    progress: bool = True,
) -> tuple[Encoder, History]:
    """Train a copy of ``encoder`` on ``graph``.

    Supervised training draws batches of labelled training nodes and applies
    ``losses.pairwise_loss`` to their outputs. Unsupervised training draws
    batches of the graph's edges, ``negatives`` destinations per edge in
    proportion to in-degree ** 0.75, removes the batch's edges from the
    sampled neighbourhoods and applies ``losses.link_loss``. The learnable
    feature table, if any, trains with the network through sparse gradients
    (``torch.optim.SparseAdam``), so a step updates only the rows of the
    batch's sampled nodes; the other weights train with ``torch.optim.Adam``.

    Args:
        graph: the graph the encoder was built for.
        encoder: the starting point; it is copied, never changed.
        objective: "supervised" (needs labels) or "unsupervised".
        epochs: passes over the training nodes (or edges).
        batch_size: seed nodes (supervised) or positive edges (unsupervised)
            per step.
        lr: Adam's learning rate.
        fanouts: neighbours sampled per node at each hop, one per layer,
            ``-1`` for all.
        negatives: negative destinations per edge (unsupervised).
        train_share: share of the labelled, non-excluded nodes trained on;
            the split is drawn from ``seed``. Below 1 the rest form the test
            side, which evaluation reports; at 1 evaluation covers every
            labelled node.
        eval_every: evaluate after every this many epochs (and after the
            last); 0 never. Needs labels; skipped without them.
        levels: the ``k`` values ``evaluate`` reports.
        device: where to train ("cpu", "cuda", ...).
        seed: makes the split, the batches, the samples and dropout
            reproducible; torch's global generator is left as it was.
        callback: called as ``callback(record, encoder)`` after each epoch
            with the encoder being trained (read it, do not change it).
        table_lr: SparseAdam's learning rate for the feature table; None
            uses ``lr``.
        margin: ``pairwise_loss``'s margin; None takes its default.
        temperature: ``link_loss``'s temperature.
        replace: sample neighbours with replacement.
        num_workers: loader worker processes.
        keep_embeddings: keep every epoch's embeddings in the ``History`` (for
            animations; costs one full ``embed`` per epoch).
        progress: show a tqdm bar over epochs.

    Returns:
        ``(trained, history)``: a new encoder, on the CPU in eval mode, and
        the run's ``History``.

    Raises:
        ValueError: a bad argument, named in the message; supervised training
            on a graph without labelled training nodes.
    """
    fanouts = _check_arguments(
        graph, encoder, objective, epochs, batch_size, lr, fanouts, eval_every
    )
    train_mask, test_mask = split_labelled(graph, train_share, seed)
    if objective == "supervised" and not train_mask.any():
        raise ValueError(
            'objective="supervised" needs labelled, non-excluded nodes (got none)'
        )

    device = torch.device(device)
    model = copy.deepcopy(encoder).to(device)
    loader = _make_loader(
        graph,
        objective,
        train_mask,
        fanouts,
        batch_size,
        negatives,
        replace,
        seed,
        num_workers,
    )
    step = _Step(graph, model, objective, device, lr, table_lr, margin, temperature)
    evaluator = _Evaluator(
        graph, model, device, levels, train_share < 1.0, test_mask, keep_embeddings
    )
    with _seeded(seed, device), _sparse_table(model):
        initial = evaluator(0, eval_every)
        records = _run(loader, step, evaluator, epochs, eval_every, callback, progress)

    model.cpu().eval()
    history = History(
        objective=objective,
        records=tuple(records),
        initial=initial,
        train_mask=train_mask,
        test_mask=test_mask,
        embeddings=tuple(evaluator.kept),
    )
    return model, history


def split_labelled(
    graph: Graph, train_share: float, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Split the labelled, non-excluded nodes into train and test by ``seed``.

    Args:
        graph: the graph.
        train_share: share of those nodes in the train side, in (0, 1]. At 1
            both sides hold every one of them.
        seed: seeds the split; None draws a fresh one.

    Returns:
        ``(train_mask, test_mask)``, each ``[num_nodes]`` bool.

    Raises:
        ValueError: ``train_share`` outside (0, 1].
    """
    if not 0.0 < train_share <= 1.0:
        raise ValueError(f"train_share must be in (0, 1] (got {train_share!r})")
    candidates = np.flatnonzero((graph.labels >= 0) & ~graph.excluded)
    train_mask = np.zeros(graph.num_nodes, dtype=bool)
    if train_share >= 1.0:
        train_mask[candidates] = True
        return train_mask, train_mask.copy()

    order = np.random.default_rng(seed).permutation(candidates)
    num_train = int(round(train_share * len(candidates)))
    train_mask[order[:num_train]] = True
    test_mask = np.zeros(graph.num_nodes, dtype=bool)
    test_mask[order[num_train:]] = True
    return train_mask, test_mask


def forward_batch(encoder: Encoder, batch: Data) -> Tensor:
    """Run the encoder over a sampled batch; return the seeds' outputs.

    Each layer computes only the nodes the next layer reads (PyG's
    ``trim_to_layer``), using the per-hop counts the sampler reports; mean
    and gcn aggregation are sparse matrix products, so no tensor holds one
    feature row per sampled edge.

    Args:
        encoder: the encoder.
        batch: a ``Data`` from ``sampling.node_loader`` or ``link_loader``
            (``n_id``, ``edge_index``, ``num_sampled_nodes``,
            ``num_sampled_edges``).

    Returns:
        ``[num_seeds, embedding_dim]`` outputs of the batch's seed nodes (the
        first ``num_seeds`` of ``n_id``): the same as
        ``encoder(batch.n_id, batch.edge_index)[:num_seeds]``.

    Note:
        lstm aggregation runs untrimmed, through ``encoder.forward``: PyG's
        lstm reads every neighbourhood padded to the longest one present, so
        trimming would change its outputs.
    """
    if encoder.config.aggr == "lstm":
        return encoder(batch.n_id, batch.edge_index)[: _num_seeds(batch)]
    bounds = _layer_bounds(batch, len(encoder.convs))
    x = encoder.input_features(batch.n_id)
    for layer, conv in enumerate(encoder.convs):
        num_dst, num_edges = bounds[layer]
        edge_index = batch.edge_index[:, :num_edges]
        x = _convolve(conv, encoder.config.aggr, x, edge_index, num_dst)
        x = encoder.between_layers(x, layer)
    return x[: _num_seeds(batch)]


def _make_loader(
    graph: Graph,
    objective: str,
    train_mask: np.ndarray,
    fanouts: tuple[int, ...],
    batch_size: int,
    negatives: int,
    replace: bool,
    seed: int | None,
    num_workers: int,
) -> NodeLoader | LinkLoader:
    """Labelled training nodes (supervised) or every edge (unsupervised)."""
    if objective == "supervised":
        return node_loader(
            graph,
            fanouts,
            torch.from_numpy(np.flatnonzero(train_mask)),
            batch_size=batch_size,
            shuffle=True,
            drop_last=int(train_mask.sum()) > batch_size,
            replace=replace,
            seed=seed,
            num_workers=num_workers,
        )
    return link_loader(
        graph,
        fanouts,
        negatives=negatives,
        batch_size=batch_size,
        shuffle=True,
        replace=replace,
        seed=seed,
        num_workers=num_workers,
    )


class _Step:
    """One optimisation step on one batch, for either objective."""

    def __init__(
        self,
        graph: Graph,
        model: Encoder,
        objective: str,
        device: torch.device,
        lr: float,
        table_lr: float | None,
        margin: float | None,
        temperature: float,
    ) -> None:
        self.model = model
        self.objective = objective
        self.device = device
        self.metric = model.config.metric
        self.margin = margin
        self.temperature = temperature
        self.labels = torch.tensor(graph.labels)  # a copy: the graph is read-only
        self.optimizers = _optimizers(model, lr, table_lr)

    def __call__(self, batch: Data) -> float:
        batch = batch.to(self.device)
        outputs = forward_batch(self.model, batch)
        if self.objective == "supervised":
            labels = self.labels[batch.n_id[: outputs.shape[0]].cpu()]
            loss = pairwise_loss(
                outputs, labels.to(self.device), metric=self.metric, margin=self.margin
            )
        else:
            negative = batch.dst_neg_index.view(batch.src_index.numel(), -1)
            loss = link_loss(
                outputs[batch.src_index],
                outputs[batch.dst_pos_index],
                outputs[negative],
                metric=self.metric,
                temperature=self.temperature,
            )
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in self.optimizers:
            optimizer.step()
        return float(loss.detach())


class _Evaluator:
    """Embeds and evaluates the model when due; keeps embeddings on request."""

    def __init__(
        self,
        graph: Graph,
        model: Encoder,
        device: torch.device,
        levels: Sequence[int],
        test_only: bool,
        test_mask: np.ndarray,
        keep: bool,
    ) -> None:
        self.graph = graph
        self.model = model
        self.device = device
        self.levels = tuple(levels)
        self.test_only = test_only
        self.test_mask = test_mask
        self.keep = keep
        self.kept: list[Tensor] = []
        self.labelled = bool(test_mask.any())

    def __call__(
        self, epoch: int, eval_every: int, last: bool = False
    ) -> dict[str, float] | None:
        due = self.labelled and eval_every > 0 and (epoch % eval_every == 0 or last)
        if not (due or self.keep):
            return None
        embeddings = embed(self.graph, self.model, device=self.device, progress=False)
        if self.keep:
            self.kept.append(embeddings)
        if not due:
            return None
        return evaluate(
            self.graph,
            embeddings,
            levels=self.levels,
            test_only=self.test_only,
            test_mask=self.test_mask,
            metric=self.model.config.metric,
        )


def _run(
    loader: NodeLoader | LinkLoader,
    step: _Step,
    evaluator: _Evaluator,
    epochs: int,
    eval_every: int,
    callback: Callback | None,
    progress: bool,
) -> list[EpochRecord]:
    start = time.perf_counter()
    sampler = (
        loader.node_sampler if isinstance(loader, NodeLoader) else (loader.link_sampler)
    )
    records = []
    bar = tqdm(range(1, epochs + 1), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        if isinstance(sampler, CSRSampler):
            sampler.set_epoch(epoch)
        loss = _epoch(step.model, loader, step)
        figures = evaluator(epoch, eval_every, last=epoch == epochs)
        record = EpochRecord(epoch, loss, time.perf_counter() - start, figures)
        records.append(record)
        logger.info("epoch %d: loss %.4f, %s", epoch, loss, figures or "not evaluated")
        bar.set_postfix(loss=f"{loss:.4f}")
        if callback is not None:
            callback(record, step.model)
    return records


def _epoch(model: Encoder, loader: Iterable[Data], step: _Step) -> float:
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = step(batch)
        total += loss
        count += 1
        logger.debug("step %d: loss %.4f", count, loss)
    model.eval()
    return total / count if count else math.nan


def _layer_bounds(batch: Data, num_layers: int) -> list[tuple[int, int]]:
    """Per layer: how many leading nodes it outputs and edges it reads."""
    num_nodes, num_edges = batch.num_nodes, batch.edge_index.shape[1]
    hop_nodes = getattr(batch, "num_sampled_nodes", None)
    hop_edges = getattr(batch, "num_sampled_edges", None)
    if (
        hop_nodes is None
        or hop_edges is None
        or len(hop_nodes) != num_layers + 1
        or len(hop_edges) != num_layers
    ):
        return [(num_nodes, num_edges)] * num_layers
    nodes_within = np.cumsum(hop_nodes)  # nodes within h hops
    edges_within = np.cumsum([0, *hop_edges])  # edges of hops 1..h
    return [
        (
            int(nodes_within[num_layers - 1 - layer]),
            int(edges_within[num_layers - layer]),
        )
        for layer in range(num_layers)
    ]


def _num_seeds(batch: Data) -> int:
    size = getattr(batch, "batch_size", None)
    if size is not None:
        return int(size)
    hop_nodes = getattr(batch, "num_sampled_nodes", None)
    return int(hop_nodes[0]) if hop_nodes is not None else int(batch.num_nodes)


def _convolve(
    conv: SAGEConv, aggr: str, x: Tensor, edge_index: Tensor, num_dst: int
) -> Tensor:
    """One ``SAGEConv`` from the rows of ``x`` to its first ``num_dst`` rows."""
    x_dst = x[:num_dst]
    if aggr not in ("gcn", "mean") or conv.project or conv.normalize:
        return conv((x, x_dst), edge_index, size=(x.shape[0], num_dst))

    mean = _mean_neighbors(x, edge_index, num_dst, self_too=aggr == "gcn")
    out = conv.lin_l(mean)
    if conv.root_weight:
        out = out + conv.lin_r(x_dst)
    return out


def _mean_neighbors(
    x: Tensor, edge_index: Tensor, num_dst: int, *, self_too: bool
) -> Tensor:
    """``[num_dst, d]`` mean of in-neighbour rows (and the node's own, for gcn)."""
    src, dst = edge_index
    if dst.numel() > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        order = torch.argsort(dst, stable=True)
        src, dst = src[order], dst[order]
    counts = torch.bincount(dst, minlength=num_dst)
    rows = torch.zeros(num_dst + 1, dtype=torch.int64, device=x.device)
    torch.cumsum(counts, 0, out=rows[1:])
    values = torch.ones(src.numel(), dtype=x.dtype, device=x.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "CSR support is in beta"
        adjacency = torch.sparse_csr_tensor(
            rows, src, values, size=(num_dst, x.shape[0]), check_invariants=False
        )
    total = adjacency @ x
    counts = counts.to(x.dtype)
    if self_too:
        total = total + x[:num_dst]
        counts = counts + 1
    return total / counts.clamp(min=1).unsqueeze(1)


def _optimizers(
    model: Encoder, lr: float, table_lr: float | None
) -> list[torch.optim.Optimizer]:
    table = [] if model.table is None else list(model.table.parameters())
    table_ids = {id(p) for p in table}
    dense = [p for p in model.parameters() if id(p) not in table_ids]
    optimizers: list[torch.optim.Optimizer] = []
    if dense:
        optimizers.append(torch.optim.Adam(dense, lr=lr))
    if table:
        optimizers.append(torch.optim.SparseAdam(table, lr=table_lr or lr))
    return optimizers


@contextmanager
def _sparse_table(model: Encoder) -> Iterator[None]:
    """Give the feature table sparse gradients while training, as before after."""
    table = model.table
    if table is None:
        yield
        return
    was_sparse = table.sparse
    table.sparse = True
    try:
        yield
    finally:
        table.sparse = was_sparse


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generators (dropout) inside, restore them after."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _check_arguments(
    graph: Graph,
    encoder: Encoder,
    objective: str,
    epochs: int,
    batch_size: int,
    lr: float,
    fanouts: Sequence[int],
    eval_every: int,
) -> tuple[int, ...]:
    """Raise on a bad argument; return the checked fanouts."""
    if objective not in OBJECTIVES:
        raise ValueError(
            f"objective must be one of {list(OBJECTIVES)} (got {objective!r})"
        )
    if encoder.num_nodes != graph.num_nodes:
        raise ValueError(
            f"encoder was built for {encoder.num_nodes} nodes but the graph has "
            f"{graph.num_nodes}; build it with init_encoder(config, graph)"
        )
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int (got {value!r})")
    if not lr > 0:
        raise ValueError(f"lr must be positive (got {lr!r})")
    if eval_every < 0:
        raise ValueError(f"eval_every must be 0 or more (got {eval_every})")
    checked = check_fanouts(fanouts)
    if len(checked) != len(encoder.convs):
        raise ValueError(
            f"fanouts must give one hop per layer ({len(encoder.convs)}) "
            f"(got {list(checked)})"
        )
    return checked

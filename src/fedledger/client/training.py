"""Client-side local training and evaluation on tensors already in memory.

``train_local`` is the hot path of a simulation (the engine trains ~100 clients per round with
one shared model object), so it slices mini-batches straight from the tensors with a seeded
``torch.randperm`` per epoch: no DataLoader, no per-client model construction.

Determinism: the same model architecture, ``global_params``, data, hyper-parameters and
``generator`` state give a bit-identical ``delta`` (the CPU kernels used are deterministic).

FedProx (Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith, "Federated Optimization in Heterogeneous
Networks", MLSys 2020): ``proximal_mu > 0`` adds (mu/2)·||w − w_global||² to every batch's loss.
Its gradient, mu·(w − w_global), is added to the parameters' gradients after ``backward`` with
two multi-tensor (``torch._foreach_*``) ops per step, as the paper's reference implementation
perturbs the gradient; ``proximal_mu = 0`` runs exactly the plain loop (bit-identical deltas).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fedledger.errors import ConfigError, DataError
from fedledger.models.params import get_flat_params, set_flat_params


@dataclass(frozen=True, eq=False)
class LocalResult:
    """What one client's local training produces.

    delta: (d,) float32 = trained params - global params
    num_samples: training samples the client holds (its FedAvg weight)
    loss: sample-weighted mean training loss over the last epoch (pre-step, per batch)
    """

    delta: torch.Tensor
    num_samples: int
    loss: float


OptimizerFactory = Callable[[list[torch.nn.Parameter], float, float, float], torch.optim.Optimizer]


def _sgd(
    params: list[torch.nn.Parameter], lr: float, momentum: float, wd: float
) -> torch.optim.Optimizer:
    # foreach=False on CPU skips torch's per-step implementation probe (halves the step cost)
    foreach = None if any(p.device.type != "cpu" for p in params) else False
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd, foreach=foreach)


def _adam(
    params: list[torch.nn.Parameter], lr: float, momentum: float, wd: float
) -> torch.optim.Optimizer:
    # momentum is SGD's; Adam keeps its default betas
    foreach = None if any(p.device.type != "cpu" for p in params) else False
    return torch.optim.Adam(params, lr=lr, weight_decay=wd, foreach=foreach)


OPTIMIZERS: dict[str, OptimizerFactory] = {"sgd": _sgd, "adam": _adam}


def optimizer_names() -> list[str]:
    return sorted(OPTIMIZERS)


def _check_xy(x: torch.Tensor, y: torch.Tensor) -> int:
    if x.dim() < 1 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise DataError(
            f"x must be (N, ...) and y (N,) with the same N, got x {tuple(x.shape)}, "
            f"y {tuple(y.shape)}"
        )
    if y.dtype != torch.int64:
        raise DataError(f"labels must be int64 class indices, got {y.dtype}")
    return int(y.shape[0])


def check_settings(
    *,
    optimizer: str,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    proximal_mu: float,
) -> None:
    """A ConfigError naming the first local-training setting that is out of range."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {optimizer!r}; expected one of: {', '.join(optimizer_names())}"
        )
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a positive number, got {lr!r}")
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if not (math.isfinite(proximal_mu) and proximal_mu >= 0):
        raise ConfigError(f"proximal_mu must be a finite number >= 0, got {proximal_mu!r}")


def train_local(
    model: torch.nn.Module,
    global_params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    proximal_mu: float = 0.0,
) -> LocalResult:
    """Load ``global_params`` into ``model``, run ``epochs`` passes of mini-batch training with
    cross-entropy on (x, y) with a fresh optimiser, and return the update.

    x: (N, *input_shape) float32; y: (N,) int64. The last batch of an epoch may be smaller.
    ``proximal_mu``: FedProx's proximal weight mu (0: none); the reported loss is the
    cross-entropy alone, without the proximal term.
    Unknown optimiser or a bad hyper-parameter -> ConfigError; empty or mismatched data ->
    DataError; wrong-size ``global_params`` -> ModelError.
    """
    check_settings(
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        proximal_mu=proximal_mu,
    )
    n = _check_xy(x, y)
    if n == 0:
        raise DataError("a client with no training samples cannot train")

    set_flat_params(model, global_params)
    model.train()
    weights = list(model.parameters())
    opt = OPTIMIZERS[optimizer](weights, lr, momentum, weight_decay)
    # FedProx: the global model each step is pulled back to (per parameter tensor)
    anchor = [w.detach().clone() for w in weights] if proximal_mu > 0 else None
    epoch_loss = torch.zeros((), dtype=torch.float64)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        epoch_loss = torch.zeros((), dtype=torch.float64)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            if anchor is not None:
                _add_proximal_grad(weights, anchor, proximal_mu)
            opt.step()
            epoch_loss += loss.detach() * len(idx)  # no .item(): no sync per batch
    delta = get_flat_params(model) - global_params.to(torch.float32)
    return LocalResult(delta=delta, num_samples=n, loss=float(epoch_loss) / n)


def _add_proximal_grad(
    weights: list[torch.nn.Parameter], anchor: list[torch.Tensor], mu: float
) -> None:
    """grad += mu·(w − w_global): the gradient of (mu/2)·||w − w_global||², in place. A tensor
    without a gradient (unused this step) is left alone: the optimiser skips it, so it still
    equals its anchor and its proximal gradient is zero."""
    ws: list[torch.Tensor] = []
    anc: list[torch.Tensor] = []
    grads: list[torch.Tensor] = []
    for w, a in zip(weights, anchor, strict=True):
        if w.grad is not None:
            ws.append(w)
            anc.append(a)
            grads.append(w.grad)
    with torch.no_grad():
        torch._foreach_add_(grads, torch._foreach_sub(ws, anc), alpha=mu)


def evaluate(
    model: torch.nn.Module,
    params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 1024,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` with ``params`` on (x, y)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    n = _check_xy(x, y)
    if n == 0:
        raise DataError("cannot evaluate on an empty data set")
    set_flat_params(model, params)
    was_training = model.training
    model.eval()
    correct = 0
    loss_sum = 0.0
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            logits = model(xb)
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
    model.train(was_training)
    return correct / n, loss_sum / n

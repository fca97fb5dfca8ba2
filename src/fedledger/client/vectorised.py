"""All clients of a round trained together: ``federation.backend = "vectorised"``.

The sequential reference (:func:`fedledger.client.training.train_local`) trains one client
after the other; at batch 32 on small models nearly all of a step is framework overhead. Here
the parameters of C clients are stacked along a leading client axis and every layer is applied
to all of them at once (hand-batched layers: ``torch.baddbmm`` for a Linear over a
(C, B, features) tensor, a grouped convolution for a Conv2d), so a training step of C clients is
one forward, one backward (autograd over the stacked leaves: the clients' losses are summed,
and no client's loss depends on another's parameters) and one optimiser update. (A
``torch.func`` version, ``vmap(grad(...))`` over ``functional_call``, measured slower on CPU
for the MLP at 100 and 1,000 clients.) Per client the semantics are those of
``train_local``: the client's own data, the same ``torch.randperm`` per epoch drawn from its own
generator (hence the same mini-batches, the last smaller batch included), the same epochs, lr,
SGD (momentum, weight decay; ``torch.optim.SGD``) or Adam (``torch.optim.Adam``, default betas),
FedProx's proximal term (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys
2020), the mean cross-entropy of each batch as the loss, and the same reported loss.

Ragged clients: a client with fewer samples has fewer steps; the batch axis is padded (masked
samples add nothing to its loss) and its steps past its last one are masked out (its parameters
and optimiser state stay unchanged). Clients are processed in chunks of ``chunk`` (default: as
many as fit in :data:`CHUNK_BUDGET_BYTES`) to bound memory.

Supported models: the built-in ``logreg``, ``mlp`` and ``cnn`` (exactly those classes; a plugin
model is refused with a ConfigError, never approximated). The result equals the sequential one
up to float rounding (different kernels sum in a different order): tests/test_vectorised.py
pins 1e-5. A run's global model hash differs, and since a round's selection seed derives from
the previous model's hash, with partial participation the two backends pick other clients from
round 1 on (the runs then differ as two seeds do).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fedledger.client.training import LocalResult, _check_xy, check_settings
from fedledger.errors import ConfigError, DataError

CHUNK_BUDGET_BYTES = 512 * 2**20  # the automatic chunk's memory bound
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, as train_local uses them
ADAM_EPS = 1e-8

ClientData = tuple[torch.Tensor, torch.Tensor, torch.Generator]  # (x, y, generator)


@dataclass(frozen=True)
class _Op:
    """One step of a model's forward pass: kind in {flatten, linear, relu, conv, pool}; ``w``
    and ``b`` index the model's parameter list; ``pad`` is a conv's 'same' padding."""

    kind: str
    w: int = -1
    b: int = -1
    pad: int = 0


def _plan(model: nn.Module) -> list[_Op]:
    """The model's forward pass as batched ops; ConfigError for a model this backend cannot
    run exactly."""
    from fedledger.models.cnn import CNN
    from fedledger.models.logreg import LogReg
    from fedledger.models.mlp import MLP

    index = {id(p): i for i, p in enumerate(model.parameters())}

    def walk(mods: Sequence[nn.Module]) -> list[_Op]:
        ops: list[_Op] = []
        for m in mods:
            if type(m) is nn.Linear and m.bias is not None:
                ops.append(_Op("linear", index[id(m.weight)], index[id(m.bias)]))
            elif type(m) is nn.ReLU:
                ops.append(_Op("relu"))
            elif (
                type(m) is nn.Conv2d
                and m.bias is not None
                and m.stride == (1, 1)
                and m.dilation == (1, 1)
                and m.groups == 1
                and m.padding_mode == "zeros"
                and isinstance(m.padding, tuple)
                and m.padding[0] == m.padding[1]
            ):
                ops.append(_Op("conv", index[id(m.weight)], index[id(m.bias)], m.padding[0]))
            elif type(m) is nn.MaxPool2d and m.kernel_size == 2 and m.stride == 2:
                ops.append(_Op("pool"))
            else:
                raise _unsupported(model, f"its layer {m!r}")
        return ops

    if type(model) is LogReg:
        return [_Op("flatten"), *walk([model.linear])]
    if type(model) is MLP:
        return [_Op("flatten"), *walk(list(model.net))]
    if type(model) is CNN:
        return [*walk(list(model.features)), _Op("flatten"), *walk(list(model.head))]
    raise _unsupported(model, "it")


def _unsupported(model: nn.Module, what: str) -> ConfigError:
    return ConfigError(
        f"federation.backend = 'vectorised' cannot train model {type(model).__name__}: {what} "
        "has no batched form here (supported: the built-in logreg, mlp and cnn); set "
        "federation.backend = 'sequential'"
    )


def check_vectorisable(model: nn.Module) -> None:
    """ConfigError unless the vectorised backend can train ``model`` exactly."""
    _plan(model)


def _forward(ops: list[_Op], ps: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x: (C, B, *input_shape) -> logits (C, B, K), client c with parameters ps[j][c]."""
    c, b = x.shape[0], x.shape[1]
    h = x
    grouped = False  # h as (B, C*channels, H, W): the layout of the grouped convolutions
    for op in ops:
        if op.kind == "flatten":
            if grouped:  # (B, C*ch, H, W) -> (C, B, ch*H*W)
                h = h.reshape(b, c, -1).transpose(0, 1)
                grouped = False
            h = h.reshape(c, b, -1)
        elif op.kind == "linear":  # (C, B, F) @ (C, F, O) + (C, 1, O) -> (C, B, O)
            h = torch.baddbmm(ps[op.b].unsqueeze(1), h, ps[op.w].transpose(1, 2))
        elif op.kind == "relu":
            h = torch.relu(h)
        elif op.kind == "conv":
            if not grouped:  # (C, B, ch, H, W) -> (B, C*ch, H, W)
                h = h.transpose(0, 1).reshape(b, -1, *h.shape[3:])
                grouped = True
            w = ps[op.w]  # (C, O, ch, k, k)
            h = F.conv2d(
                h, w.reshape(-1, *w.shape[2:]), ps[op.b].reshape(-1), padding=op.pad, groups=c
            )
        elif op.kind == "pool":
            h = F.max_pool2d(h, 2)
    return h


def auto_chunk(model: nn.Module, *, batch_size: int, input_shape: tuple[int, ...]) -> int:
    """Clients per chunk that fit in :data:`CHUNK_BUDGET_BYTES`: per client its parameters and
    their optimiser copies (~6 d floats) and one batch's activations and their gradients."""
    acts = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal acts
        acts += out.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
    d = sum(p.numel() for p in model.parameters())
    per_client = 4 * (6 * d + 3 * batch_size * (acts + math.prod(input_shape)))
    return max(1, CHUNK_BUDGET_BYTES // per_client)


def train_vectorised(
    model: nn.Module,
    global_params: torch.Tensor,
    clients: Sequence[ClientData],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    proximal_mu: float = 0.0,
    chunk: int | None = None,
) -> list[LocalResult]:
    """Train every client of ``clients`` from ``global_params``; their results in order.

    Parameters
    ----------
    model
        The architecture (its parameter values are not used or changed).
    global_params
        (d,) the model every client starts from.
    clients
        (x, y, generator) per client: x (N_i, *input_shape) float32, y (N_i,) int64, and the
        generator ``train_local`` would get (its state advances the same way).
    chunk
        Clients trained together at most (None: :func:`auto_chunk`).

    Returns
    -------
    list[LocalResult]
        What ``train_local`` returns per client, up to float rounding.
    """
    return list(
        iter_vectorised(
            model,
            global_params,
            clients,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            momentum=momentum,
            weight_decay=weight_decay,
            proximal_mu=proximal_mu,
            chunk=chunk,
        )
    )


def iter_vectorised(
    model: nn.Module,
    global_params: torch.Tensor,
    clients: Sequence[ClientData],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    proximal_mu: float = 0.0,
    chunk: int | None = None,
) -> Iterator[LocalResult]:
    """:func:`train_vectorised`, yielding each chunk's results as soon as it is trained."""
    check_settings(
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        proximal_mu=proximal_mu,
    )
    ops = _plan(model)
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(f"vectorised_chunk must be an integer >= 1, got {chunk!r}")
    for x, y, _ in clients:
        if _check_xy(x, y) == 0:
            raise DataError("a client with no training samples cannot train")
    if not clients:
        return
    if chunk is None:
        chunk = auto_chunk(model, batch_size=batch_size, input_shape=tuple(clients[0][0].shape[1:]))
    shapes = [p.shape for p in model.parameters()]
    g32 = global_params.to(torch.float32)
    for start in range(0, len(clients), chunk):
        yield from _train_chunk(
            ops,
            shapes,
            g32,
            clients[start : start + chunk],
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            momentum=momentum,
            wd=weight_decay,
            mu=proximal_mu,
        )


def _schedule(
    clients: Sequence[ClientData], *, epochs: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every client's mini-batches as rows of the chunk's concatenated data: idx (C, T, W) (the
    padding points at the all-zero row after the data), mask (C, T, W), steps (C,) each client's
    number of steps, first_last (C,) the step its last epoch starts at."""
    ns = [int(y.shape[0]) for _, y, _ in clients]
    width = min(batch_size, max(ns))
    pad = sum(ns)
    n = torch.tensor(ns)
    nb = (n + batch_size - 1) // batch_size
    t_max = epochs * int(nb.max())
    # the permutations train_local draws, one per epoch, in the same order: (client, epoch)
    # major, each n_i long
    perms = torch.cat(
        [torch.randperm(k, generator=g) for (_, _, g), k in _per_epoch(clients, ns, epochs)]
    )
    reps = n * epochs  # samples per client over all its epochs
    client = torch.arange(len(ns)).repeat_interleave(reps)
    starts = torch.cumsum(reps, 0) - reps  # where each client's run begins in ``perms``
    pos = torch.arange(perms.numel()) - starts[client]  # position within the client's run
    epoch, k = pos // n[client], pos % n[client]
    step = epoch * nb[client] + k // batch_size
    offsets = torch.cumsum(n, 0) - n
    idx = torch.full((len(ns), t_max, width), pad, dtype=torch.int64)
    idx[client, step, k % batch_size] = perms + offsets[client]
    mask = idx != pad
    steps = epochs * nb
    first_last = (epochs - 1) * nb
    return idx, mask, steps, first_last


def _per_epoch(
    clients: Sequence[ClientData], ns: list[int], epochs: int
) -> Iterator[tuple[ClientData, int]]:
    for c, k in zip(clients, ns, strict=True):
        for _ in range(epochs):
            yield c, k


def _train_chunk(
    ops: list[_Op],
    shapes: list[torch.Size],
    global_params: torch.Tensor,
    clients: Sequence[ClientData],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    momentum: float,
    wd: float,
    mu: float,
) -> list[LocalResult]:
    c = len(clients)
    idx, mask, steps, first_last = _schedule(clients, epochs=epochs, batch_size=batch_size)
    x_all = torch.cat(
        [x for x, _, _ in clients] + [clients[0][0].new_zeros(1, *clients[0][0].shape[1:])]
    )
    y_all = torch.cat([y for _, y, _ in clients] + [clients[0][1].new_zeros(1)])
    counts = mask.sum(2)  # (C, T) samples per step
    maskf = mask.to(torch.float32)
    denom = counts.clamp(min=1).to(torch.float32)
    # a step's loss counts towards the reported loss in the client's last epoch
    t_range = torch.arange(idx.shape[1])
    last_w = ((t_range >= first_last[:, None]) & (t_range < steps[:, None])) * counts
    all_active = int(steps.min())

    # every client's parameters in one (C, d) buffer: the leaves are views of its columns, so
    # the update is written in place and the deltas are its rows
    flat = global_params.unsqueeze(0).expand(c, -1).clone()  # (C, d)
    ps: list[torch.Tensor] = []
    anchor: list[torch.Tensor] | None = [] if mu > 0 else None  # FedProx: the global model
    offset = 0
    for s in shapes:
        n = math.prod(s)
        ps.append(flat[:, offset : offset + n].view(c, *s).detach().requires_grad_(True))
        if anchor is not None:
            anchor.append(global_params[offset : offset + n].view(1, *s))
        offset += n
    state1 = [torch.zeros_like(p) for p in ps] if (optimizer == "adam" or momentum) else None
    state2 = [torch.zeros_like(p) for p in ps] if optimizer == "adam" else None
    epoch_loss = torch.zeros(c, dtype=torch.float64)

    for t in range(idx.shape[1]):
        rows = idx[:, t]  # (C, W)
        logits = _forward(ops, ps, x_all[rows])  # (C, W, K)
        ce = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y_all[rows].reshape(-1), reduction="none"
        ).view(rows.shape)
        per_client = (ce * maskf[:, t]).sum(1) / denom[:, t]  # (C,) each batch's mean
        grads = torch.autograd.grad(per_client.sum(), ps)
        epoch_loss += per_client.detach().to(torch.float64) * last_w[:, t]
        active = None if t < all_active else (t < steps)  # (C,) bool
        with torch.no_grad():
            for j, (p, g) in enumerate(zip(ps, grads, strict=True)):
                act = None if active is None else active.view(-1, *([1] * (p.dim() - 1)))
                if anchor is not None:
                    g = g + mu * (p - anchor[j])
                if wd:
                    g = g.add(p, alpha=wd)
                if optimizer == "adam":
                    assert state1 is not None and state2 is not None
                    new_p = _adam_step(p, g, state1, state2, j, act, step=t + 1, lr=lr)
                    p.copy_(new_p if act is None else torch.where(act, new_p, p))
                    continue
                if state1 is not None:  # torch.optim.SGD: buf = momentum * buf + g
                    if act is None:
                        g = state1[j].mul_(momentum).add_(g)
                    else:
                        buf = state1[j] * momentum + g
                        state1[j] = torch.where(act, buf, state1[j])
                        g = buf
                if act is None:
                    p.add_(g, alpha=-lr)
                else:
                    p.copy_(torch.where(act, p.add(g, alpha=-lr), p))

    delta = flat.sub_(global_params)  # (C, d), in place: trained - global
    ns = [int(y.shape[0]) for _, y, _ in clients]
    losses = epoch_loss.tolist()
    return [
        LocalResult(delta=row, num_samples=n, loss=s / n)
        for row, n, s in zip(delta.unbind(0), ns, losses, strict=True)
    ]


def _adam_step(
    p: torch.Tensor,
    g: torch.Tensor,
    exp_avg: list[torch.Tensor],
    exp_avg_sq: list[torch.Tensor],
    j: int,
    act: torch.Tensor | None,
    *,
    step: int,
    lr: float,
) -> torch.Tensor:
    """torch.optim.Adam's single-tensor update (amsgrad off) for every client at once: every
    active client is at the same step count (all start at step 0 and are active up to their
    last step), so the bias corrections are shared."""
    b1, b2 = ADAM_BETAS
    m = exp_avg[j].lerp(g, 1 - b1)
    v = exp_avg_sq[j].mul(b2).addcmul_(g, g, value=1 - b2)
    exp_avg[j] = m if act is None else torch.where(act, m, exp_avg[j])
    exp_avg_sq[j] = v if act is None else torch.where(act, v, exp_avg_sq[j])
    step_size = lr / (1 - b1**step)
    denom = (v.sqrt() / (1 - b2**step) ** 0.5).add_(ADAM_EPS)
    return p.addcdiv(m, denom, value=-step_size)

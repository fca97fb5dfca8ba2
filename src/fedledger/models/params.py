"""Models as flat vectors (the unit of every update) and a forward-FLOP estimate.

The flat order is ``torch.nn.utils.parameters_to_vector`` order: ``model.parameters()`` one
after the other, each flattened in C order.  Buffers (none in the built-in models) are not
part of the vector.
"""

from __future__ import annotations

import torch

from fedledger.errors import ModelError


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def get_flat_params(model: torch.nn.Module) -> torch.Tensor:
    """(d,) float32: a fresh copy of all parameters (on the model's device)."""
    params = [p.detach().reshape(-1) for p in model.parameters()]
    if not params:
        return torch.empty(0, dtype=torch.float32)
    return torch.cat(params).to(torch.float32)


def set_flat_params(model: torch.nn.Module, flat: torch.Tensor) -> None:
    """Copy ``flat`` (d,) into the parameters in place (their storage and identity are kept, so
    optimisers holding them stay valid). ModelError on a wrong shape or a non-float vector."""
    d = num_params(model)
    if not isinstance(flat, torch.Tensor) or flat.dim() != 1 or flat.numel() != d:
        got = tuple(flat.shape) if isinstance(flat, torch.Tensor) else type(flat).__name__
        raise ModelError(f"flat parameter vector must have shape ({d},) for this model, got {got}")
    if not flat.is_floating_point():
        raise ModelError(f"flat parameter vector must be floating point, got {flat.dtype}")
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n


def count_flops(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Approximate forward FLOPs for one sample: 2 x multiply-adds of every Linear and Conv2d
    (biases, activations and pooling are ignored). Runs one forward pass on zeros."""
    total = 0

    def linear_hook(mod: torch.nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, torch.nn.Linear)
        rows = out.numel() // mod.out_features  # positions the layer is applied at
        total += 2 * rows * mod.in_features * mod.out_features

    def conv_hook(mod: torch.nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, torch.nn.Conv2d)
        kh, kw = mod.kernel_size
        total += 2 * out.numel() * (mod.in_channels // mod.groups) * kh * kw

    handles = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, torch.nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
    first = next(model.parameters(), None)
    x = torch.zeros(
        (1, *input_shape),
        dtype=first.dtype if first is not None else torch.float32,
        device=first.device if first is not None else None,
    )
    try:
        with torch.no_grad():
            model(x)
    except RuntimeError as exc:
        raise ModelError(
            f"model does not accept inputs of shape {tuple(input_shape)}: {exc}"
        ) from None
    finally:
        for h in handles:
            h.remove()
    return int(total)

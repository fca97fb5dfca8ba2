"""Torch's deterministic mode, set the cheap way: a run, its audit and a resumed run must
compute bit-identical models."""

from __future__ import annotations

import os
import sys

import torch


def deterministic_torch() -> None:
    """``torch.use_deterministic_algorithms(True)``, the run's setting, without importing
    ``torch._inductor`` for it (0.8 s, a fifth of an audit): that function sets ATen's flag
    and inductor's ``config.deterministic``, which only compiled graphs read and which
    inductor's config takes from ``TORCHINDUCTOR_DETERMINISTIC`` when it is first imported.
    Already imported (or a torch without the private setter): the function itself."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if "torch._inductor.config" in sys.modules or setter is None:
        torch.use_deterministic_algorithms(True)
        return
    os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"
    setter(True, warn_only=False)

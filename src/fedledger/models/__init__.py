"""Models by name (one module per model), and models as flat parameter vectors.

Call ``torch.manual_seed(seed)`` right before ``create_model`` for a deterministic init.
"""

from fedledger.models import cnn as _cnn  # noqa: F401  (registers "cnn")
from fedledger.models import logreg as _logreg  # noqa: F401  (registers "logreg")
from fedledger.models import mlp as _mlp  # noqa: F401  (registers "mlp")
from fedledger.models.params import count_flops, get_flat_params, num_params, set_flat_params
from fedledger.models.registry import (
    create_model,
    model_names,
    model_params,
    register_model,
)

__all__ = [
    "count_flops",
    "create_model",
    "get_flat_params",
    "model_names",
    "model_params",
    "num_params",
    "register_model",
    "set_flat_params",
]

"""The client side: local training and evaluation (later: devices, Flower ClientApp)."""

from fedledger.client.trainers import register_trainer, trainer_names
from fedledger.client.training import LocalResult, evaluate, optimizer_names, train_local

__all__ = [
    "LocalResult",
    "evaluate",
    "optimizer_names",
    "register_trainer",
    "train_local",
    "trainer_names",
]

"""The engine's side of an attack: who is malicious, and when the attack's hooks run.

The attack itself (fedledger.attacks) is pure; this wrapper holds the run's state: the
malicious clients (ground truth for detection metrics), the previous global update (what a
stale free-rider replays), and the seeded generators.
"""

from __future__ import annotations

import torch

from fedledger.attacks import (
    AttackConfig,
    AttackContext,
    Backdoor,
    attack_success_rate,
    select_malicious,
)
from fedledger.attacks.base import Attack
from fedledger.attacks.label_flip import LabelFlip
from fedledger.models import set_flat_params
from fedledger.protocol.seeds import client_generator, derived_seed


class Adversary:
    def __init__(
        self,
        cfg: AttackConfig,
        *,
        num_clients: int,
        seed: int,
        num_classes: int,
        input_shape: tuple[int, ...],
    ) -> None:
        self.cfg = cfg
        self.attack: Attack = cfg.build()
        self.malicious = set(select_malicious(num_clients, cfg, seed))
        self.seed = seed
        self.num_classes = num_classes
        self.input_shape = input_shape
        self.previous_update: torch.Tensor | None = None

    def active(self, rnd: int, cid: int) -> bool:
        return rnd >= self.cfg.start_round and cid in self.malicious

    def trains(self, rnd: int, cid: int) -> bool:
        return not self.active(rnd, cid) or self.attack.trains

    def client_data(
        self, rnd: int, cid: int, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A malicious client's poisoned training data (unchanged for everyone else)."""
        if not (self.active(rnd, cid) and self.attack.poisons_data):
            return x, y
        gen = client_generator(seed=self.seed ^ 0xBAD, round=rnd, client=cid)
        return self.attack.poison_data(
            x, y, generator=gen, num_classes=self.num_classes, input_shape=self.input_shape
        )

    def poison_round(
        self,
        rnd: int,
        updates: dict[int, torch.Tensor],
        *,
        global_params: torch.Tensor,
    ) -> dict[int, torch.Tensor]:
        """Replace the malicious participants' updates (they may see the benign ones)."""
        mal = [c for c in updates if self.active(rnd, c)]
        # free-riders (who do not train) make their pseudo-updates here too
        makes_updates = self.attack.poisons_updates or not self.attack.trains
        if not mal or not makes_updates:
            return updates
        benign = [c for c in updates if c not in self.malicious]
        dim = global_params.numel()
        m = torch.stack([updates[c] for c in mal])
        b = torch.stack([updates[c] for c in benign]) if benign else torch.zeros(0, dim)
        gen = torch.Generator().manual_seed(
            derived_seed(seed=self.seed ^ 0xBAD, round=rnd, client=-2)
        )
        ctx = AttackContext(
            round=rnd,
            num_participants=len(updates),
            global_params=global_params,
            previous_global_update=self.previous_update,
        )
        poisoned = self.attack.poison_updates(m, b, generator=gen, ctx=ctx)
        out = dict(updates)
        for k, c in enumerate(mal):
            out[c] = poisoned[k].contiguous()
        return out

    def success_rate(
        self, model: torch.nn.Module, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor
    ) -> float | None:
        """Attack success rate on the test set, for targeted attacks (None otherwise):
        backdoor -> share of triggered non-target inputs classified as the target; targeted
        label flip -> share of source-class inputs classified as the target."""
        a = self.attack
        if isinstance(a, Backdoor):
            xt, yt = a.triggered_test_set(x, y, self.input_shape)
            return attack_success_rate(_predict(model, params, xt), yt, target_label=a.target_label)
        if isinstance(a, LabelFlip) and a.mode == "source_to_target":
            return attack_success_rate(
                _predict(model, params, x),
                y,
                target_label=a.target_label,
                source_label=a.source_label,
            )
        return None


@torch.no_grad()
def _predict(model: torch.nn.Module, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    set_flat_params(model, params)
    model.eval()
    out = torch.cat([model(x[i : i + 2048]).argmax(dim=1) for i in range(0, len(x), 2048)])
    model.train()
    return out

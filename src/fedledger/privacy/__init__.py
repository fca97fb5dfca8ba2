"""User-level differential privacy for federated rounds (McMahan, Ramage, Talwar, Zhang,
"Learning Differentially Private Recurrent Language Models", ICLR 2018): per-update clipping
(:mod:`.clipping`), the seeded Gaussian mechanism on the sum (:mod:`.mechanism`), the
accountant over rounds (:mod:`.accountant`, Google's dp-accounting) and the run's plan that the
engine and the audit share (:mod:`.plan`). docs/privacy.md says what is built and what is not.

Light on purpose: dp-accounting is imported only when ε is computed."""

"""The round protocol, one place for every host of it: selection, validation, committee,
the per-commitment decisions, the client side and the aggregator side. The simulation engine,
the auditor and (later) a Flower deployment stand on it side by side; none imports another."""

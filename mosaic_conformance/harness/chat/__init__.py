"""Where a connector under test talks: one target per kind, the servers behind them (Synapse,
Conduit, a running homeserver, the Discord stand-in) and the fault injector in front of them."""

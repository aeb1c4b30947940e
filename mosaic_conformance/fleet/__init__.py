"""The reference fleet: ``mosaic fleet`` (init, install, add, remove, ps, start, stop)."""

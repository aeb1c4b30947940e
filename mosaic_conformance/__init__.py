"""Conformance suites for Mosaic agent fleets and connectors, and a reference fleet."""

__version__ = "0.1.0"

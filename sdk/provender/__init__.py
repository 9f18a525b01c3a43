"""Provender: a feature store for machine learning that speaks the Feast 0.9 wire protocol."""

__version__ = "0.1.0"

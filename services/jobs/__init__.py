"""Provender jobs: the Spark applications and the online-store encoding they share with Serving."""

"""Provender Core: the registry (CoreService) and the JobService."""

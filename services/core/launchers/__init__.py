"""Launchers: how Core runs a Spark application (local spark-submit, a standalone cluster, Kubernetes).

Chosen by name (`--spark-launcher local|standalone|k8s`) through `base.create_launcher`.
"""

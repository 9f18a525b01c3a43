"""The feature table hash (FeatureTableMeta.hash): it changes exactly when the entities, the features or the
sources change, and not for labels, max_age or the order the entities are listed in (they are a set)."""

from __future__ import annotations

import hashlib

from provender.proto.feast.core import FeatureTable_pb2


def table_hash(spec: FeatureTable_pb2.FeatureTableSpec) -> str:
    """First 16 hex digits of SHA-256 over the deterministic encoding of the hashed parts."""
    hashed = FeatureTable_pb2.FeatureTableSpec(
        entities=sorted(spec.entities),
        features=spec.features,
        batch_source=spec.batch_source if spec.HasField("batch_source") else None,
        stream_source=spec.stream_source if spec.HasField("stream_source") else None,
    )
    return hashlib.sha256(hashed.SerializeToString(deterministic=True)).hexdigest()[:16]

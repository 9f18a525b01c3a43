"""The online store in Redis: its layout (keys, fields, values), the columnar encoders of that layout, and the
write rule ingestion applies to each key."""

"""What a stream ingestion job tells Prometheus: it runs for days, so Prometheus scrapes it (an HTTP /metrics on
the driver, `metrics_port`), unlike the batch jobs, which push once to a Pushgateway when they end.

Every series carries `project` and `feature_table`; the cardinality is that of the streamed tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

BATCH_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class BatchOutcome:
    """One micro-batch: messages read, rows written, skipped as older than stored, dead-lettered; its duration;
    the latest event time written and the latest Kafka timestamp read (Unix seconds, None: none)."""

    rows_read: int
    rows_written: int
    rows_skipped_stale: int
    rows_dead_lettered: int
    duration_seconds: float
    max_event_time: float | None
    max_kafka_timestamp: float | None


class StreamMetrics:
    """The job's collectors in a registry of its own, served on `port` (0: an ephemeral port; see `port`)."""

    def __init__(self, project: str, table: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("project", "feature_table")
        values = (project, table)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=self.registry).labels(*values)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry).labels(*values)

        self.batches = counter("provender_stream_batches", "Micro-batches processed.")
        self.rows_read = counter("provender_stream_rows_read", "Messages read from the topic.")
        self.rows_written = counter("provender_stream_rows_written", "Rows written to the online store.")
        self.rows_stale = counter(
            "provender_stream_rows_skipped_stale", "Rows not written: a newer row of the key was stored."
        )
        self.rows_dead = counter(
            "provender_stream_rows_dead_lettered", "Messages that did not decode or validate (dead letters)."
        )
        self.batch_seconds = Histogram(
            "provender_stream_batch_duration_seconds",
            "How long a micro-batch took, from decoding to the last Redis write.",
            labels,
            buckets=BATCH_SECONDS,
            registry=self.registry,
        ).labels(*values)
        self.event_lag = gauge(
            "provender_stream_event_lag_seconds",
            "Now minus the latest event time written, at the end of the latest micro-batch.",
        )
        self.max_event_time = gauge(
            "provender_stream_max_event_time_seconds", "The latest event time written (Unix seconds)."
        )
        self.kafka_timestamp = gauge(
            "provender_stream_last_kafka_timestamp_seconds", "The latest Kafka message timestamp read."
        )
        self.consumer_lag = gauge(
            "provender_stream_consumer_lag_offsets",
            "Messages in the topic not yet read by the job (latest offsets minus the job's, all partitions).",
        )
        self.last_batch = gauge(
            "provender_stream_last_batch_time_seconds", "When the latest micro-batch ended (Unix seconds)."
        )
        self.port = 0

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve /metrics on `port` (0: any free port); returns the port."""
        server, _ = start_http_server(port, addr=address, registry=self.registry)
        self.port = int(server.server_address[1])
        return self.port

    def batch(self, outcome: BatchOutcome, now: float) -> None:
        self.batches.inc()
        self.rows_read.inc(outcome.rows_read)
        self.rows_written.inc(outcome.rows_written)
        self.rows_stale.inc(outcome.rows_skipped_stale)
        self.rows_dead.inc(outcome.rows_dead_lettered)
        self.batch_seconds.observe(outcome.duration_seconds)
        if outcome.max_event_time is not None:
            self.max_event_time.set(outcome.max_event_time)
            self.event_lag.set(max(0.0, now - outcome.max_event_time))
        if outcome.max_kafka_timestamp is not None:
            self.kafka_timestamp.set(outcome.max_kafka_timestamp)
        self.last_batch.set(now)

    def lag(self, offsets_behind: int) -> None:
        self.consumer_lag.set(offsets_behind)

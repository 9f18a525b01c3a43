"""Serving's own Prometheus metrics (request latency per method and code comes from the shared interceptor)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
FEATURE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.entity_rows = Histogram(
            "provender_serving_entity_rows",
            "Entity rows per online lookup request, by API.",
            ("api",),
            buckets=ROW_BUCKETS,
            registry=registry,
        )
        self.features = Histogram(
            "provender_serving_features",
            "Feature references per online lookup request, by API.",
            ("api",),
            buckets=FEATURE_BUCKETS,
            registry=registry,
        )
        self.not_found = Counter(
            "provender_serving_feature_not_found",
            "Feature values answered NOT_FOUND (absent, or stored with another type), by project and table.",
            ("project", "feature_table"),
            registry=registry,
        )
        self.outside_max_age = Counter(
            "provender_serving_feature_outside_max_age",
            "Feature values answered OUTSIDE_MAX_AGE, by project and table.",
            ("project", "feature_table"),
            registry=registry,
        )
        self.redis_errors = Counter(
            "provender_serving_redis_errors",
            "Redis calls that failed (connection refused, timeout, cluster down), by kind of error.",
            ("error",),
            registry=registry,
        )
        self.spec_cache_age = Gauge(
            "provender_serving_spec_cache_age_seconds",
            "Seconds since the feature table specs were last reloaded from Core (-1 before the first reload).",
            registry=registry,
        )
        self.spec_cache_tables = Gauge(
            "provender_serving_spec_cache_tables",
            "Feature tables in the spec cache.",
            registry=registry,
        )
        self.redis_up = Gauge(
            "provender_serving_redis_up",
            "1 when the last Redis health check succeeded, else 0.",
            registry=registry,
        )

    def watch_spec_cache(self, age: Callable[[], float], size: Callable[[], int]) -> None:
        self.spec_cache_age.set_function(age)
        self.spec_cache_tables.set_function(lambda: float(size()))

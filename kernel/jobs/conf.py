"""Names Core and the Spark applications share outside the job arguments: Spark conf keys and column names."""

# Set by every launcher on the job's Spark session: the job id that what the job reports (pushed metrics) carries.
JOB_ID_CONF = "spark.provender.job_id"

# Forces retrieval's point-in-time join strategy: "broadcast" or "sequence" (provender.jobs.point_in_time).
RETRIEVAL_STRATEGY_CONF = "spark.provender.retrieval.strategy"

# "full": a stream job keeps Spark's and Kafka's per-micro-batch INFO log lines (provender.jobs.stream_ingestion).
STREAM_LOGS_CONF = "spark.provender.streamLogs"

# The column of a feature row's event time in Unix nanoseconds, inside the jobs.
EVENT_NS_COLUMN = "__event_ns"

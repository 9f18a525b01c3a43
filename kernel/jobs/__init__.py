"""The contract between Core and the Spark applications: job arguments, the job folder, the report lines, the
Spark conf keys."""

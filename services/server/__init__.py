"""gRPC transport shared by Core and Serving: error mapping, metrics, health, reflection, shutdown."""

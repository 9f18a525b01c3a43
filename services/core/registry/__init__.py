"""The registry: projects, entities and feature tables, stored in Postgres."""

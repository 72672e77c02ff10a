"""HTTP ingest: any client posts batches of values as JSON."""

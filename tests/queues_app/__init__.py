"""Job functions for the enqueue and inline-mode tests: importable by dotted path, as a worker
needs (``tests.queues_app.jobs.add``)."""

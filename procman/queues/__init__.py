"""Background jobs on RQ: the queue YAML, the Redis URL, and the weighted queue order.

The modules here are pure; only the worker and monitoring modules (built on them) talk to Redis.
"""

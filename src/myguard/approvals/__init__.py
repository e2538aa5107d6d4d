"""Inline approval of held statements: policy, durable queue, waiting, notification."""

"""Comments API: a small, durable replacement for the original in-memory Flask app."""

__version__ = "1.0.0"

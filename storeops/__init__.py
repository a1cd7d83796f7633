"""storeops: rule-driven workflows and simulation for regional retail operations."""

__version__ = "0.1.0"

"""Event management for AI inference platforms on Kubernetes: the library every function vendors."""

__version__ = "0.1.0"

"""Cove: a private AI coding assistant. This package holds what the server, agent and inference share."""

__version__ = "0.1.0"

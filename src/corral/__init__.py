"""Corral: a self-hosted sandbox server for AI agents that speaks the E2B wire protocol."""

__all__ = ["__version__"]

__version__ = "0.1.0"

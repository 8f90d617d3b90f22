"""ml-intern: an autonomous ML engineering agent built on LangGraph."""

__version__ = "0.1.0"

"""An OpenAI-compatible AI gateway configured by declarative YAML routes."""

__version__ = "0.1.0"

"""LLM providers for the plain-English question tiers (one module per provider)."""

from mantissa.llm.base import LLMConfig, LLMProvider, get_provider, provider_types

__all__ = ["LLMConfig", "LLMProvider", "get_provider", "provider_types"]

"""Translators between the API a client speaks and the API an upstream speaks, one module per pair.

`translator_for(inbound, upstream)` is the one table; the dispatcher asks it once per attempt.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config.models import ApiName
from gateway.translate.base import Translator, TranslatorFactory
from gateway.translate.chat_messages import ChatToMessages
from gateway.translate.embeddings import EmbeddingsToEmbeddings
from gateway.translate.messages_chat import MessagesToChat
from gateway.translate.messages_messages import MessagesToMessages
from gateway.translate.openai_openai import OpenAIChatToOpenAIChat
from gateway.translate.responses_chat import ResponsesToChat
from gateway.translate.responses_responses import ResponsesToResponses

__all__ = ["TRANSLATORS", "Translator", "TranslatorFactory", "translator_for"]

TRANSLATORS: Mapping[tuple[ApiName, ApiName], TranslatorFactory] = {
    ("openai.chat", "openai.chat"): OpenAIChatToOpenAIChat,
    ("openai.chat", "anthropic.messages"): ChatToMessages,
    ("anthropic.messages", "openai.chat"): MessagesToChat,
    ("anthropic.messages", "anthropic.messages"): MessagesToMessages,
    ("openai.responses", "openai.chat"): ResponsesToChat,
    ("openai.responses", "openai.responses"): ResponsesToResponses,
    ("openai.embeddings", "openai.embeddings"): EmbeddingsToEmbeddings,
    # Legacy completions stream like chat (`data:` chunks with choices, `[DONE]`): the same pass-through.
    ("openai.completions", "openai.completions"): OpenAIChatToOpenAIChat,
}


def translator_for(inbound: ApiName, upstream: ApiName) -> TranslatorFactory | None:
    """The translator from `inbound` (what the client speaks) to `upstream`, or None when there is none."""
    return TRANSLATORS.get((inbound, upstream))

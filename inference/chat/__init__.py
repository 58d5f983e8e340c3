"""Chat models for the agent: the types every chat model speaks, the local model with grammar-constrained tool calls,
any OpenAI-compatible server.
"""

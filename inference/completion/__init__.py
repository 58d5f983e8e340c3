"""Completions: the engine, its backends (local, a llama.cpp server, any OpenAI-compatible server, the daemon) and
what shapes a job (window, stop rule, FIM, drafts).
"""

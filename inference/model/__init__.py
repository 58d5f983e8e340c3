"""Local models and their memory: loading a GGUF, the host's resident model, KV caches (sizes, saved states,
overflow), model files and what they can serve.
"""

"""On-device and remote models: completion engine, KV caches, model files."""

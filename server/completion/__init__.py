"""The completion client: the engine run off the event loop, live suggestions while typing, warming, conversions to
LSP, stats.
"""

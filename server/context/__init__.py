"""What a completion is given beyond the document's window: the enclosing code, imported definitions, recent code,
the project index.
"""

"""The LSP server: inline completions and agent actions for any editor."""

"""The command line, a face like the language server: `cove` and its subcommands (`main.py`), the agent in a terminal
(`agent_terminal.py`), checkpoints, commit messages, the index, what would leave the machine (`outbound.py`), and the
context `cove complete` gives the model (`project_context.py`)."""

from cove.cli.main import main

__all__ = ["main"]

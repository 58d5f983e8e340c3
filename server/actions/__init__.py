"""Actions in the editor: agent actions as code actions and commands, and the local actions the completion model
writes alone.
"""

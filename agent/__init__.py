"""The agent daemon (the next issues build it)."""

"""The Agent Client Protocol face (`cove acp`): Cove's agent in every editor that hosts agents over ACP."""

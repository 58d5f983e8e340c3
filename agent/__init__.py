"""The agent daemon and its agents: the socket transport and its services (sessions, memory, events, agent runs),
the planner and executor loop, tools, safety, reminders, compaction and the critique. See docs/architecture.md."""

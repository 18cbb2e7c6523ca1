"""The audit trail: a hash-chained JSON Lines log of every decision, and the tools that read it."""

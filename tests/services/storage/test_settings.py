"""The per-server settings store: what an admin sets is what the bot applies, on both backends."""

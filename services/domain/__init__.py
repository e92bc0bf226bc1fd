"""The domain: the edit use case and the rules it applies (validation, the queue, pacing, cooldowns)."""

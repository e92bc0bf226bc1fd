"""The outside: what talks to other systems (the Model Hub, HTTP, the painter's pages, metrics, logs, config)."""

"""The deployment files (Dockerfile, Compose, Prometheus, Grafana), checked against the bot."""

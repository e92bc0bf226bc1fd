"""The benchmark rig's smoke test."""

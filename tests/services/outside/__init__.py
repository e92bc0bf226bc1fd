"""Unit tests of services/outside/."""

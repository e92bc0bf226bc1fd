"""Unit tests of services/domain/."""

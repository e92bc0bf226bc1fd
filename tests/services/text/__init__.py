"""Unit tests of services/text/."""

"""Unit tests of services/imaging/."""

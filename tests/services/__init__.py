"""Unit tests of services/, one package per layer."""

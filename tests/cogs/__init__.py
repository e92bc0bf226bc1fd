"""Unit tests of the cogs' modules (no emulator)."""

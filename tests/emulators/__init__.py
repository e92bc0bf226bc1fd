"""Tests of the emulators themselves: as strict as the real services where the bot depends on it."""

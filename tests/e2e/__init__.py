"""End to end: the real bot (discord.py, the cogs, bot.py) against the Discord and Model Hub emulators."""

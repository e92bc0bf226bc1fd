"""Retouch without Discord, in layers that import only downwards: outside → domain → storage → imaging → text."""

"""Imaging: the picture type, the limits pictures are held to, and the work on their pixels."""

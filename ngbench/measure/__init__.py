"""Trackers shared by every flow: clean timing, energy, memory. Each is a small context manager."""

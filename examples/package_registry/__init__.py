"""A small package registry protected by authgate's middleware (see app.py)."""

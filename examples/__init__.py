"""Example applications protected by authgate."""

"""Thin translations between frameworks and the framework-free core."""

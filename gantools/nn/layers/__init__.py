"""Layers shared by several architecture families."""

"""Shipped model weights: safetensors files listed in manifest.toml (a data package)."""

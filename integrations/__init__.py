"""Adapters between the assistant's core and the outside systems it talks to, one module each."""

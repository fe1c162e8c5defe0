"""Durable background jobs: the ``job`` table's service functions and the embedded runner."""

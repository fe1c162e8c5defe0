"""Database services: functions that take a ``Session`` first and call the domain core.

The web pages, the REST API and the CLI call these; they hold no HTTP or terminal code.
"""

"""Durable background jobs: the ``job`` table's service functions (``service``), the runner
embedded in the app (``runner``), and ``archplan worker`` processes on PostgreSQL (``worker``)
woken through a procrastinate queue (``queue``)."""

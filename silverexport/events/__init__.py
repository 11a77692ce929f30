"""The event-sourcing core: event types, the append-only log, the job views and audit.

Nothing in here knows about actors or HTTP.
"""

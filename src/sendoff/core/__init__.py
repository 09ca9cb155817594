"""The core every other package stands on: errors, the ``sendoff`` logger and its
redaction policy, the WSGI/ASGI type aliases, and events with their emitter.

Nothing here imports anything else of sendoff.
"""

"""``executor worker``: runs the executions of a server on this host's engine (Celery + Redis).

``client`` talks to the server, ``sink`` reports records through it, ``runner`` runs one
execution, ``service`` heartbeats and hosts the Celery consumer.
"""

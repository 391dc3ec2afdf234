"""The Celery app that the server (sending) and ``executor worker`` (receiving) share.

One message per execution, holding only its id: everything else (flow, inputs, files) the
worker fetches from the server, which stays the source of truth. Late acknowledgement: a message
is acknowledged when the execution ended, so a worker killed mid-run (SIGKILL, a host lost)
leaves it unacknowledged and the broker delivers it again, to another worker. On Redis that
happens once the visibility timeout has passed (``EXECUTOR_BROKER_VISIBILITY_TIMEOUT``, seconds);
a redelivery that comes while the first worker still heartbeats is told to wait by the server.
"""

from __future__ import annotations

from celery import Celery

RUN_TASK = "executor.run_execution"
DEFAULT_QUEUE = "default"
DEFAULT_VISIBILITY_TIMEOUT = 3600


def celery_app(broker_url: str, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT) -> Celery:
    """A Celery app on ``broker_url`` (``redis://host:port/db``), no result backend;
    ``visibility_timeout``: seconds an unacknowledged message waits before Redis delivers it
    again (``Settings.broker_visibility_timeout``)."""
    app = Celery("executor", broker=broker_url)
    timeout = visibility_timeout
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # a worker outlives a Redis restart or outage, however long: it keeps reconnecting
        broker_connection_max_retries=None,
        # ...and its running executions go on meanwhile (their records go to the server, not to
        # Redis); said explicitly, as Celery means to turn this on by default
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options={"visibility_timeout": timeout},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        # a heartbeat of our own goes to the server; Celery's gossip is not needed
        worker_enable_remote_control=False,
    )
    return app

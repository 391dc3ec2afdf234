"""Server mode: Kestra's REST API over the executor, a durable queue, execution slots.

Only this package imports the web stack (FastAPI, Starlette, uvicorn, sse-starlette); it reaches
engines and stores through ``executor.app`` and ``executor.store`` like the CLI does.
"""

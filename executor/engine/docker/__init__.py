"""The Docker backend (``EXECUTOR_ENGINE=docker``, the default): the only package that imports
``docker``. ``backend.DockerBackend`` is what ``engine.backends`` makes of the settings.
"""

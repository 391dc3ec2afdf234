"""Container engines behind one seam: ``api`` (the Protocols), ``backends`` (the factory),
``containers`` (WorkingDirectories over any engine of volumes and containers), ``docker``
(the Docker backend), ``fake`` (a backend with no engine, for tests).
"""

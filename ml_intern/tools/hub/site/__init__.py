"""The directory bash and jobs put first on PYTHONPATH: it holds ml-intern's sitecustomize."""

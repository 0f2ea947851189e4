"""Web console, grid-worker phone pages, statistics and HTTP API (FastAPI)."""

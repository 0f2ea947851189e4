"""Server-rendered pages: console, phone pages, registry, statistics."""

"""JSON API and server-rendered pages."""

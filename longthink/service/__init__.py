"""longthink as a service: ``longthink serve`` (HTTP: runs, streamed events, an OpenAI-compatible endpoint) and
``longthink mcp`` (the Model Context Protocol). Needs the ``server`` extra."""

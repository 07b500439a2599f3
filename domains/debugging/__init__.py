"""The code-debugging domain pack: reproduce, localise, patch search rewarded by sandboxed tests, explain."""

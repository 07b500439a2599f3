"""Domain packs (routing, debugging, business plans), found through a registry."""

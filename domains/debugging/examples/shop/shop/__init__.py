"""A tiny shop: prices read from text, a cart that totals them."""

"""A shopping cart."""

from shop.prices import apply_discount, parse_price


class Cart:
    def __init__(self) -> None:
        self.lines: list[tuple[str, float, int]] = []

    def add(self, name: str, price: str, quantity: int = 1) -> None:
        """Add ``quantity`` of an item whose price is written as text ("$3.50")."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        self.lines.append((name, parse_price(price), quantity))

    def total(self, discount: float = 0.0) -> float:
        """The sum of every line, less ``discount`` percent."""
        return apply_discount(sum(price * qty for _, price, qty in self.lines), discount)

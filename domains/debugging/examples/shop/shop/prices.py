"""Reading and adjusting prices."""


def parse_price(text: str) -> float:
    """A price written like "$1,234.50" as a number (1234.5)."""
    return float(text.strip().rstrip("$").replace(",", ""))


def apply_discount(price: float, percent: float) -> float:
    """``price`` less ``percent`` percent, rounded to cents."""
    return round(price * (100 - percent) / 100, 2)

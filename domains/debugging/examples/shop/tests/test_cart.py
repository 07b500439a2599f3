import pytest
from shop.cart import Cart
from shop.prices import parse_price


@pytest.mark.parametrize(("text", "value"), [("$3.50", 3.5), ("12", 12.0), ("$1,234.50", 1234.5)])
def test_parse_price(text: str, value: float) -> None:
    assert parse_price(text) == pytest.approx(value)


def test_total(cart: Cart) -> None:
    assert cart.total() == pytest.approx(7.0)


def test_total_with_discount(cart: Cart) -> None:
    cart.add("cake", "$2.00")
    assert cart.total(discount=10) == pytest.approx(8.1)


def test_big_order() -> None:
    cart = Cart()
    cart.add("laptop", "$1,299.00")
    assert cart.total() == pytest.approx(1299.0)


def test_quantity_must_be_positive(cart: Cart) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        cart.add("air", "$0", 0)

import pytest
from shop.cart import Cart


@pytest.fixture
def cart() -> Cart:
    c = Cart()
    c.add("tea", "$3.50", 2)
    return c

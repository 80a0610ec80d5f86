"""Database ids that arrive as text (URLs, forms, JSON): checked before any query sees them."""

MAX_ID = 2**63 - 1  # a 64-bit primary key, on SQLite and PostgreSQL alike


def is_id(value) -> bool:
    """ASCII digits within a primary key's range. ``str.isdigit`` alone accepts '²' and '٣',
    which ``int()`` or the database then refuse with a 500; a 2**70 overflows SQLite."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 < value <= MAX_ID
    text = str(value)
    return text.isascii() and text.isdecimal() and 0 < int(text) <= MAX_ID


class IdConverter:
    """``<id:...>`` in URLs: an id ``is_id`` accepts, else the URL does not match (a 404), so no
    view sees ``2**70``, which ``<int:...>`` passes on and SQLite cannot hold (a 500)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        if not is_id(value):
            raise ValueError(value)
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)

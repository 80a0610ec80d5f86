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

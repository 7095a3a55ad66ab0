"""GTIN (EAN/UPC) checks: 8, 12, 13 or 14 digits with a valid GS1 check digit, stored as GTIN-14."""


def check_digit(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return str((10 - total % 10) % 10)


def normalise_gtin(value):
    """The GTIN-14 form, or raise ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError("must be a string of digits")
    value = value.strip()
    if not value.isdigit() or not value.isascii() or len(value) not in (8, 12, 13, 14):
        raise ValueError("must be 8, 12, 13 or 14 digits")
    if check_digit(value[:-1]) != value[-1]:
        raise ValueError("has a wrong check digit")
    return value.rjust(14, "0")

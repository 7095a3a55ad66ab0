"""GTIN (EAN/UPC) checks: 8, 12, 13 or 14 digits with a valid GS1 check digit, stored as GTIN-14."""


def check_digit(body):
    """The GS1 check digit of a string of digits: weights 3, 1, 3, … from the right."""
    codes = body.encode()
    tripled, single = codes[-1::-2], codes[-2::-2]
    total = 3 * (sum(tripled) - 48 * len(tripled)) + sum(single) - 48 * len(single)
    return str(-total % 10)


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

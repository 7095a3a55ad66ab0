import pytest

from clearinghouse.records.gtin import normalise_gtin


@pytest.mark.parametrize(
    "value,expected",
    [
        ("4012345678901", "04012345678901"),
        ("04012345678901", "04012345678901"),
        ("96385074", "00000096385074"),
        ("036000291452", "00036000291452"),
    ],
)
def test_valid_gtins_become_gtin14(value, expected):
    assert normalise_gtin(value) == expected


@pytest.mark.parametrize(
    "value", ["4012345678902", "12345", "abcdefgh", "", "４０１２３４５６７８９０１", 4012345678901]
)
def test_invalid_gtins_are_refused(value):
    with pytest.raises(ValueError):
        normalise_gtin(value)

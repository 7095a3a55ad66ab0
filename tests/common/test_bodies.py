"""The bounds of JSON bodies (clearinghouse/common/api/bodies.py): the array splitter agrees with a whole
parse for any body and any read size, nesting is refused in one pass, and every value a parser
refuses is named."""

import io
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearinghouse.common.api import bodies
from clearinghouse.common.api.bodies import (
    BadRow,
    BodyError,
    PayloadTooLarge,
    array_elements,
    element,
)


class Trickle(io.BytesIO):
    """A stream that hands out at most ``step`` bytes a read, as a slow network would."""

    def __init__(self, data, step):
        super().__init__(data)
        self.step = step

    def read(self, size=-1):
        return super().read(self.step if size is None or size < 0 else min(size, self.step))


def split(data, step=1 << 16):
    reader = Trickle(data, step)
    head = b""
    while not head.strip():
        chunk = reader.read(step)
        if not chunk:
            break
        head += chunk
    return [
        e if isinstance(e, BadRow) else element(e)
        for e in array_elements(reader, first=head.lstrip())
    ]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(json_values, max_size=6),
    step=st.integers(min_value=1, max_value=64),
    indent=st.booleans(),
)
def test_the_splitter_gives_what_a_whole_parse_gives_for_any_read_size(values, step, indent):
    data = json.dumps(values, indent=2 if indent else None, ensure_ascii=False).encode()
    assert split(data, step) == orjson.loads(data)


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"[]", []),
        (b" [ ]\n", []),
        (b'[1, "a,]}", {"b": [2]}]', [1, "a,]}", {"b": [2]}]),
        (b'["\\"", "\\\\"]', ['"', "\\"]),
    ],
)
def test_arrays_split_into_their_elements(body, expected):
    assert split(body, 3) == expected


@pytest.mark.parametrize("body", [b"[1,]", b"[,1]", b"[1 2]", b"[tru]"])
def test_a_broken_element_is_a_bad_row_and_the_others_go_on(body):
    rows = split(body)
    assert any(isinstance(r, BadRow) and "not valid JSON" in r.message for r in rows)


@pytest.mark.parametrize("body", [b"[1", b'["a', b"[1}", b"[1] x", b"[[1]"])
def test_a_body_that_is_no_array_is_refused_whole(body):
    with pytest.raises(BodyError):
        split(body)


def test_deep_nesting_is_one_pass_over_the_bytes_not_a_hang():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert split(deep) == [BadRow(None, "the row nests deeper than 16 levels")]
    inside = b'[{"payload": ' + deep + b'}, {"ok": 1}]'
    assert split(inside) == [BadRow(None, "the row nests deeper than 16 levels"), {"ok": 1}]


def test_nesting_up_to_the_bound_is_taken():
    levels = bodies.MAX_DEPTH
    value = {"a": json.loads("[" * (levels - 1) + "]" * (levels - 1))}
    assert split(orjson.dumps([value])) == [value]
    too_deep = {"a": json.loads("[" * levels + "]" * levels)}
    assert isinstance(split(orjson.dumps([too_deep]))[0], BadRow)


@pytest.mark.parametrize(
    "raw, field, message",
    [
        (b'{"a": 1e400}', "a", "finite number"),
        (b'{"a": [0, -1e999]}', "a[1]", "finite number"),
        (b'{"a": {"b": "\\udc00"}}', "a.b", "lone UTF-16 surrogate"),
        (b'{"a": "\\ud83d"}', "a", "lone UTF-16 surrogate"),
        (b'{"a": NaN}', "a", "finite number"),
    ],
)
def test_a_value_no_parser_takes_is_named(raw, field, message):
    row = element(raw)
    assert isinstance(row, BadRow) and row.field == field and message in row.message


def test_valid_surrogate_pairs_and_astral_characters_are_text():
    assert element(b'{"a": "\\ud83d\\ude00 \xf0\x9f\x98\x80"}') == {"a": "😀 😀"}


def test_invalid_utf8_is_a_bad_row():
    assert element(b'{"a": "\xff"}') == BadRow(None, "the row is not valid UTF-8")


def test_a_huge_integer_becomes_a_double_as_orjson_reads_it():
    assert element(b'{"a": 100000000000000000000000000000}') == {"a": 1e29}


def test_an_element_over_its_limit_is_413():
    with pytest.raises(PayloadTooLarge):
        split(b'["' + b"a" * (bodies.ITEM_MAX_BYTES + 10) + b'"]')


@pytest.mark.parametrize(
    "value, path",
    [
        ({"a": "x" * (bodies.MAX_STRING + 1)}, "a"),
        ({"a": ["ok", "b\x00"]}, "a[1]"),
        ([{"n": 2**64}], "[0].n"),
    ],
)
def test_the_walk_names_strings_and_integers_out_of_bounds(value, path):
    with pytest.raises(BodyError) as caught:
        bodies.check_value(value)
    assert caught.value.path == path


@pytest.mark.parametrize(
    "value, message",
    [
        ("2026-01-01T10:00:00", "time zone"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
        ("9999-12-31T23:59:59-05:00", "out of range"),
        ("1899-12-31T23:59:59Z", "out of range"),
        ("not a date", "ISO 8601"),
        (20260101, "ISO 8601"),
    ],
)
def test_moments_need_a_zone_and_stay_in_the_calendar(value, message):
    with pytest.raises(ValueError, match=message):
        bodies.parse_moment(value)


def test_a_moment_is_utc():
    assert bodies.parse_moment("2026-01-01T10:00:00+02:00").isoformat() == (
        "2026-01-01T08:00:00+00:00"
    )

import binascii
from base64 import b64decode
from urllib import parse

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination as BaseCursorPagination

NOT_OURS = "is not a cursor this API gave out: follow the next and previous links of a page"


class CursorPagination(BaseCursorPagination):
    """Stable pages over growing tables: an opaque cursor instead of page numbers."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_ordering(self, request, queryset, view):
        """A view's own ``ordering`` wins over the default."""
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def get_page_size(self, request):
        """A ``page_size`` that is not a whole number from 1 is refused rather than ignored (a
        client that asks for ``page_size=abc`` has a bug it should hear about); above the
        maximum it is cut to the maximum."""
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not (value.isascii() and value.isdigit() and int(value) >= 1):
            raise ValidationError(
                {
                    self.page_size_query_param: f"must be a whole number from 1 to {self.max_page_size}"
                }
            )
        return min(int(value), self.max_page_size)

    def decode_cursor(self, request):
        """DRF reads a cursor leniently (base64 that drops what is not base64, then a query
        string that may be empty), so ``?cursor=!!!`` was the first page. A cursor is only what
        ``encode_cursor`` writes; anything else is a 400, not a page the client did not ask for."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            text = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            tokens = parse.parse_qs(text, keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeError, binascii.Error):
            raise ValidationError({self.cursor_query_param: NOT_OURS}) from None
        offset, reverse = tokens.get("o", ["0"]), tokens.get("r", ["0"])
        if (
            not tokens
            or not text.isprintable()  # a NUL in the position would fail in PostgreSQL
            or tokens.keys() - {"o", "r", "p"}
            or any(len(values) != 1 for values in tokens.values())
            or not (offset[0].isascii() and offset[0].isdigit())
            or reverse[0] not in ("0", "1")
        ):
            raise ValidationError({self.cursor_query_param: NOT_OURS})
        return super().decode_cursor(request)

    def paginate_queryset(self, queryset, request, view=None):
        """A cursor of the right shape whose position is not a value of the ordering field
        (hand-made, or from another list) is refused like any cursor that is not ours."""
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError):
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise ValidationError({self.cursor_query_param: NOT_OURS}) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters

from rest_framework.pagination import CursorPagination as BaseCursorPagination


class CursorPagination(BaseCursorPagination):
    """Stable pages over growing tables: an opaque cursor instead of page numbers."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 500

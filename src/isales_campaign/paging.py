"""Paging of lists, shared by the service and the gateway."""

#: Campaigns on a list page when the request names no page size.
DEFAULT_PAGE_SIZE = 10

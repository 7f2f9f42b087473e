"""The page size of a list that names none, shared by the service and the gateway."""

DEFAULT_PAGE_SIZE = 10

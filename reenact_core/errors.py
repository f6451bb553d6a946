"""One exception type, so nodes can tell a user mistake from a bug."""


class ReenactError(ValueError):
    """Bad input or a run that cannot go on; the message says what was expected and what was given."""

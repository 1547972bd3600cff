"""One exception type for everything a user can cause, so the CLI prints one line, not a traceback."""


class HwgenError(Exception):
    """A problem with the user's model, options or files; the message says what to do."""

    def __init__(self, message: str, *, node: str | None = None, op: str | None = None):
        where = ""
        if node is not None:
            where = f"node '{node}'" + (f" ({op})" if op else "") + ": "
        super().__init__(where + message)
        self.node = node
        self.op = op

"""Expected failures, reported to the user as a message rather than a traceback."""

EXIT_USER_ERROR = 1
EXIT_DATABASE_LOCKED = 3  # click exits with 2 on invalid usage
EXIT_DRIFT = 4  # segkit drift --fail-on-drift: a refit is advised


class SegkitError(Exception):
    """A failure the user can fix; the message says what happened and what to do."""

    def __init__(self, message: str, exit_code: int = EXIT_USER_ERROR):
        super().__init__(message)
        self.exit_code = exit_code

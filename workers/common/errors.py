"""Exceptions shared by engines and tasks. Engines stay free of Django; tasks turn these into job states."""


class ReadableError(Exception):
    """An expected failure whose message is written for the user (bad input, impossible settings)."""


class Cancelled(Exception):
    """The owner asked the job to stop; raised once the engine has stopped cleanly."""

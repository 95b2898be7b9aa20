"""The error every settings and configuration loader raises, in a module of its own so that code which only
catches it (the checker's command line) never imports the validation library behind it."""


class ConfigError(Exception):
    """A settings file that cannot be used; the message names the file, the key and the fix."""

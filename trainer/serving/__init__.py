"""Use what a night made: name a model (``refs``), talk to it (``chat``), serve it over an OpenAI-compatible
API (``server``); the commands ``labrador chat`` and ``labrador serve`` are in ``cli``."""

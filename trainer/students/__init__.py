"""Students made from the registry's models: derived by keeping some layers (``derive``), healed by distilling
their parent on everyday chat (``heal``, ``chat_corpus``), and the ``labrador models`` command that lists, pulls
and derives them. Above training (healing trains); the store they start from is ``trainer/models``."""

"""Tables: the key codec, the column record, ``Database`` and ``Table``, listings and bulk transfers."""

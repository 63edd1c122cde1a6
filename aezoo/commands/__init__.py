"""The ``aezoo`` command's subcommands, a module per concern; plugins add theirs through the
``aezoo_register_commands`` hook (:class:`aezoo.Command`)."""

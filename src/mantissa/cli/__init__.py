"""The ``mantissa`` command line: one module per command group, each registering itself."""

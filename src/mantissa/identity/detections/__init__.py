"""One module per identity detection; each defines a :class:`~.base.Detection` subclass."""

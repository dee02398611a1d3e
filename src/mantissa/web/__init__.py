"""The web console served by ``mantissa serve`` (pages in ``templates/``, assets in ``static/``)."""

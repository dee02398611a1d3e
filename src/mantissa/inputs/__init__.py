"""Collectors: pull inputs that page through vendor APIs, and push receivers.

See :mod:`mantissa.inputs.base` for the framework and ``docs/collect.md`` for users.
"""

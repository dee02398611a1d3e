"""Plain-English questions over the lake: understand → map → plan → SQL → guard → run.

``answer(runtime, question, session=None, dialect="duckdb", explain=False) -> Answer``.
"""

from mantissa.ask.service import Answer, answer, translate

__all__ = ["Answer", "answer", "translate"]

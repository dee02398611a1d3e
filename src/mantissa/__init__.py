"""Mantissa Log: an open-source security data platform.

Data flows one way: inputs → sources (parse) → lake (Parquet) → engines (SQL)
→ detect / ask → alerts → destinations / soar.
"""

__version__ = "0.1.0"

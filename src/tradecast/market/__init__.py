"""Market data: the data sources (replay, ccxt), the closed-bar view every tick sees, and the
indicators computed over it."""

"""Risk as plain code: the pure gate over an order and a portfolio, and gated execution."""

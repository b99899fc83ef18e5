"""The desk's hands: market data, indicators, the paper broker, the risk gate, agent tools."""

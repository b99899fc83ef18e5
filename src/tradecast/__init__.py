"""tradecast: a multi-agent LLM trading desk that runs on local hardware and broadcasts itself."""

__version__ = "0.1.0"

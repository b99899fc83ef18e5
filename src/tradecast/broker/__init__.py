"""The broker: its Protocol, the paper broker and its book, market rules and costs, and the
journals that make it durable."""

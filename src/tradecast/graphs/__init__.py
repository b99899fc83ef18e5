"""LangGraph state machines: the desk graph and (later) the chat-control graph."""

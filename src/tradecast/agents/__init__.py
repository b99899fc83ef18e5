"""The desk's agents: analyst, risk, trader, persona, plus the deterministic rules and consensus."""

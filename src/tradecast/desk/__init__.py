"""The running desk: its timeline (replay or live), the one tick loop, the operator controls,
replica coordination (lease, health) and the desk store."""

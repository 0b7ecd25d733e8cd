"""`adpulse deploy`: the stack's inventory, releases and rolling installs onto its hosts."""

"""The web console for approvers and security, served by the admin listener (see app.py)."""

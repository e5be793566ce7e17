"""Reaching a remote machine: one seam (seam.py), its transports, and the remote shell
that runs every script of an operation through one started command (shell.py)."""

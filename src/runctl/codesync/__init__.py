"""Code sync: push a source tree to a remote machine over SSH (``runctl code push``)."""

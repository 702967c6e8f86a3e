"""captionbot: the composition root (settings, the `captionbot` command, the one-machine mode)."""

"""The CLI's commands that are more than a few lines: the daemon, status, completion."""

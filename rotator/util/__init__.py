"""Ground-floor helpers every stage may use: durations and times, retries, logging, key and certificate generation."""

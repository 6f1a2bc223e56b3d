"""Stage 2, inspect: a referenced credential's bytes → certificate facts and findings. Pure,
and never raises on bad input: a broken certificate is a finding.
"""

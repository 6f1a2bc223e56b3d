"""Alerts: which credentials page (pure), the trigger-once/resolve-always notifier and its
bounded POST, and the sinks (PagerDuty Events v2, signed webhooks).
"""

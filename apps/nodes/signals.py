"""What other apps may learn from the nodes app without it importing them."""

from django.dispatch import Signal

# Sent after a node's health report is stored: ``node`` and ``report`` (the
# node program's answer). Domains read their certificates' expiry from it.
health_recorded = Signal()

"""Webhooks: signed POSTs to subscribers when fits, recommendations, jobs or the autopilot change.

Events are written to an outbox (``webhook_events`` and one ``webhook_deliveries`` row per
subscriber) in the transaction that changes the state they report, so a crash loses none; the
worker delivers them (service/webhooks/delivery.py). See docs/integrations.md.
"""

"""Registry events POSTed to registered URLs: the webhooks, their outbox, the deliverer."""

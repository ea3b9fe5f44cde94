"""Metric subscriptions and alerts (issue 14): model -> blocks -> records -> delivery -> command."""

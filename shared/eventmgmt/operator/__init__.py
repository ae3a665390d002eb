"""Operator commands on the `eventmgmt` CLI."""

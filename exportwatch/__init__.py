"""Exportwatch for the systems around it: `exportwatch.client` is the typed client ERP integrations
use (the records API over HTTP, and an order publisher for orders.submitted.v1)."""

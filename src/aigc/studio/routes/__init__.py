"""Thin, typed routes; the work lives in the catalog, the runner and the database models."""

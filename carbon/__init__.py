"""Carbyne's ingest daemon: carbon protocols, write-back cache and persister."""

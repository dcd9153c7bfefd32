"""Carbyne's render API: graphite-web's HTTP interface and target language."""

"""Translators, one test module per (client API, upstream API) pair: tables and golden transcripts."""

"""sp_realist.ingest"""

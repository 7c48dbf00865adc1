"""sp_realist.exchange"""

"""sp_realist.privacy"""

"""sp_realist.cmoc"""

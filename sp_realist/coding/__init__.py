"""sp_realist.coding"""

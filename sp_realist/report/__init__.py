"""sp_realist.report"""

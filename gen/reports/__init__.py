"""gen.reports"""

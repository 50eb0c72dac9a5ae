"""hdl.attention"""

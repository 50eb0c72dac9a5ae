"""hdl.mac"""

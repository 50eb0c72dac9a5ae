"""hdl.gemv"""

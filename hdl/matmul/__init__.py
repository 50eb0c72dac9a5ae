"""hdl.matmul"""

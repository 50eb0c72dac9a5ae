"""hdl.common"""

"""hdl.eltwise"""

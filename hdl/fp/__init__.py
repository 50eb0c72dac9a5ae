"""hdl.fp"""

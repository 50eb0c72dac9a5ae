"""sim.cocotb"""

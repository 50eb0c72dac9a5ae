"""sim.jobs"""

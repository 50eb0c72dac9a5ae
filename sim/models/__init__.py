"""sim.models"""

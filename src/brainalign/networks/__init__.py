"""brainalign.networks"""

"""brainalign.stats"""

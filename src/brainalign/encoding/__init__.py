"""brainalign.encoding"""

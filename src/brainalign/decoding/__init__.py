"""brainalign.decoding"""

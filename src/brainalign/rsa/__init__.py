"""brainalign.rsa"""

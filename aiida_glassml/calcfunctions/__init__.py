"""calcfunctions"""

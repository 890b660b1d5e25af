"""Benchmark harness: the pipeline's stages against the bare minimum work on the same files.

`python -m bench --households 30000 --scale 1,10 --warehouse sqlite,postgres` generates a county
per scale, runs every stage of the daily pipeline on each warehouse (each stage in a fresh
process, so its peak memory is its own) and a baseline that only reads the files with the fastest
reader and bulk-loads them as text, then prints seconds, rows per second and peak memory per
stage, and the ratios pipeline / baseline and scale N / scale 1.
"""

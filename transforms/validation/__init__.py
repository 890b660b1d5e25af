"""GX suites and their run, the household checks, reasons a clerk reads."""

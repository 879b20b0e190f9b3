"""Intake: detect, unpack, scan and normalise the files of a bid (the desk received them; the pipeline
runs this in the document sandbox, :mod:`bidproc.sandbox`).

Flow: api -> desk -> pipeline -> [intake] -> signature -> encryption -> archive.
"""

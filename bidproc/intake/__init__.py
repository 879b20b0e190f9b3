"""Intake: receive, detect, unpack, scan and normalise the files of a bid."""

"""EU trusted lists and qualified status (issue 12).

``lists``: verify and load the LOTL and national lists (pyhanko ``eutl_parse``), each with a status;
``cache``: online copies on disk, the last good one kept; ``source``: files, URL, configuration;
``qualify``: a certificate's qualified status at a time (pyhanko ``QualificationAssessor``);
``assess``: the step applied to every signature report (qualification, QTST, French-rule category).
"""

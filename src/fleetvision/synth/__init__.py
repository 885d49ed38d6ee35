"""Synthetic car-listing photos with known labels.

Pure modules (numpy/PIL, no Spark): :mod:`.render` (one photo from a spec), :mod:`.exterior` and
:mod:`.interiors` (the drawings), :mod:`.files` (real file formats and broken files),
:mod:`.inventory` (listings and their photos), :mod:`.evolve` (a day of churn),
:mod:`.training_set` (class-balanced labelled sets), :mod:`.contact_sheet`. The Spark layer is
:mod:`.job` (``fleetvision generate``).
"""

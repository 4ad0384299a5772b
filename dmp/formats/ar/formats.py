# Numeric dates without the right-to-left marks Django puts between their parts: they are
# shown isolated left to right (`|ltr`, dmp/bidi.py), as on the French papers the person holds,
# and a mark inside the isolate would reorder them again.
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
